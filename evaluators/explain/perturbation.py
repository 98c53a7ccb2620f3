"""Model-agnostic word attributions: they call only ``predict_proba``, so they run on every engine.

From captum: ``KernelShap`` (coalitions sampled from the Shapley kernel, all-words and
no-words first, then a weighted linear fit). Hand-written here: leave-one-out occlusion at
word level (one batched ``predict_proba`` over every one-word-removed text of every
example), and the forward that turns KernelSHAP's word-presence masks into texts. Both
attribute the probability of the target class.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from captum.attr import KernelShap

from evaluators.explain.words import join_kept

PERTURBATION_METHODS = ("occlusion", "kernel_shap")


def leave_one_out(predictor: Any, words_list: Sequence[Sequence[str]], targets: Sequence[int],
                  base_probs: np.ndarray) -> list[np.ndarray]:
    """p(target | text) - p(target | text without word i), for every word i."""
    variants, owner = [], []
    for i, words in enumerate(words_list):
        words = list(words)
        variants += [" ".join(words[:j] + words[j + 1:]) for j in range(len(words))]
        owner += [i] * len(words)
    probs = predictor.predict_proba(variants) if variants else np.zeros((0, base_probs.shape[1]))
    owner = np.asarray(owner, dtype=np.int64)
    out = []
    for i, (words, target) in enumerate(zip(words_list, targets)):
        dropped = probs[owner == i, target]
        out.append((base_probs[i, target] - dropped).astype(np.float64))
    return out


def _presence_forward(predictor: Any, words: Sequence[str]):
    """KernelSHAP's forward: (k, n_words) presence masks in, (k, n_classes) probabilities out."""
    def forward(mask: torch.Tensor) -> torch.Tensor:
        texts = [join_kept(words, row) for row in (mask > 0.5).tolist()]
        return torch.as_tensor(np.asarray(predictor.predict_proba(texts), dtype=np.float32))
    return forward


def kernel_shap(predictor: Any, words_list: Sequence[Sequence[str]], targets: Sequence[int],
                base_probs: np.ndarray, *, n_samples: int = 100, seed: int = 0) -> list[np.ndarray]:
    """KernelSHAP values of every word, each example's coalitions in one predict call.

    A one-word text has an exact Shapley value, p(target | word) - p(target | ""), which is
    used directly (captum's kernel is undefined for a single feature).
    """
    out = []
    for i, (words, target) in enumerate(zip(words_list, targets)):
        n = len(words)
        if n <= 1:
            empty = predictor.predict_proba([""])[0, target] if n else 0.0
            out.append(np.full(n, base_probs[i, target] - empty, dtype=np.float64))
            continue
        explainer = KernelShap(_presence_forward(predictor, words))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)   # captum samples coalitions from torch's global generator
            attr = explainer.attribute(torch.ones(1, n), baselines=torch.zeros(1, n), target=int(target),
                                       n_samples=n_samples, perturbations_per_eval=n_samples)
        out.append(attr.reshape(-1).double().numpy())
    return out
