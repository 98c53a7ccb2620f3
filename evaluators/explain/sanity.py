"""Sanity checks for gradient attributions: completeness, and the model-randomization test.

Hand-written (the attributions themselves come from captum, :mod:`.gradients`):

* IG completeness (Sundararajan et al., 2017): the attributions of an example sum to
  f(x) - f(baseline) of the target logit; the gap reported is
  |sum - (f(x) - f(b))| / max(|f(x) - f(b)|, 1e-3), averaged over examples. It shrinks as
  ``n_steps`` grows; a large gap means too few steps for the model.
* Model randomization (Adebayo et al., 2018, "Sanity Checks for Saliency Maps"): the same
  method on a deep copy of the model with every weight re-initialised should give
  unrelated attributions; reported as the mean Spearman rho between the magnitudes of the
  real and the randomised word attributions (lower is better; near 1 means the method
  explains the input, not the model). Magnitudes, as in the paper's rank-correlation
  figures: a sign flip alone (rho -1 on signed scores) still ranks the same words first.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
import torch
from scipy.stats import spearmanr

# |f(x) - f(b)| (in logits) below this is treated as this: on an example the baseline barely
# moves, float32 round-off alone (~1e-6 per token) would otherwise dominate the mean relative gap.
MIN_GAIN = 1e-3


def completeness_gap(terms: np.ndarray) -> np.ndarray:
    """Per-example relative gap from an (n, 2) array of (sum of attributions, f(x) - f(b))."""
    total, gain = terms[:, 0], terms[:, 1]
    return np.abs(total - gain) / np.maximum(np.abs(gain), MIN_GAIN)


@torch.no_grad()
def randomized_copy(model: Any, seed: int = 0) -> Any:
    """A deep copy of `model` with every parameter re-initialised (seeded, the original untouched).

    Modules with ``reset_parameters`` (linear, embedding, layer-norm…) use their own
    initialiser; parameters of other modules get N(0, 0.02), transformers' usual scale.
    """
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        covered = set()
        for module in clone.modules():
            if callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
                covered.update(id(p) for p in module.parameters(recurse=False))
        for param in clone.parameters():
            if id(param) not in covered:
                param.normal_(0.0, 0.02)
    return clone.eval()


def spearman_rho(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho between two attributions of the same words (NaN when undefined)."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def randomization_rho(real: Sequence[np.ndarray], randomized: Sequence[np.ndarray]) -> np.ndarray:
    """Per-example Spearman rho between the magnitudes of the real and the randomised attributions."""
    return np.array([spearman_rho(np.abs(a), np.abs(b)) for a, b in zip(real, randomized)], dtype=np.float64)
