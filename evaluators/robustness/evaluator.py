"""The `robustness` evaluator: perturbation suite, flip rates and a greedy attack on one predictor.

Options (a suite sets them as ``{robustness: {severity: 0.3, attack: false}}``) are the
:class:`RobustnessOptions` fields. The evaluator works on any predictor (it only calls
``predict_proba`` on many texts at once), so it scores engines as well as torch models.
Hand-written glue: which examples, which perturbations, one batched call for all perturbed
texts, then the attack on the clean-correct examples (see ``perturb.py``, ``attack.py``).
With ``constraints`` on, the edits of the checked perturbations that fail the sentence check
are reverted and the attack skips candidates that fail its checks (``constraints.py``);
with ``compare_unconstrained`` the same perturbed texts and the attack are also scored
without them, so the ``unconstrained_*`` columns show what the constraints cost.
A text longer than the predictor's window is first cut to the whole words the model reads,
so every edit is one the model sees; the scores are of that part of each text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluators.base import EvalContext
from hub.results import EvalOutput
from evaluators.window import read_by
from hub.config import from_dict, opt
from hub.errors import UserError, did_you_mean

from .attack import AttackResult, greedy_attack
from .constraints import Constraints, SentenceEncoder, constrain_texts
from .perturb import NEEDS_WORDNET, PERTURBATIONS, perturb
from .scores import attack_constraint_metrics, attack_metrics, constraint_metrics, perturbation_metrics


@dataclass
class RobustnessOptions:
    severity: float = opt(0.15, "share of eligible words (or gaps, names, numbers) each perturbation touches, 0..1")
    perturbations: list[str] = opt(list(PERTURBATIONS), "perturbations to run, default all: "
                                   + ", ".join(PERTURBATIONS))
    max_examples: int | None = opt(200, "score a seeded sample of this many examples (null: all)")
    attack: bool = opt(True, "run the greedy word-substitution attack on the clean-correct examples")
    query_budget: int = opt(50, "most predictor queries the attack may spend on one example")
    constraints: bool = opt(True, "enforce the semantic constraints on edits (sentence window similarity, the "
                                  "attack's word similarity and words-changed cap); names, stopwords and POS in "
                                  "context are always kept")
    sentence_similarity: float = opt(0.9, "least cosine similarity (embedded MiniLM, mean pooling) of the text "
                                          "window around an edit to the original window; an edit below it is not made")
    similarity_window: int = opt(15, "words in the window around each edit that the sentence check compares")
    word_similarity: float = opt(0.6, "least similarity of an attack's synonym to the word it replaces "
                                      "(MiniLM embeddings of the two words)")
    max_words_changed: float = opt(0.2, "most share of a text's words one attack may change, 0..1")
    checked_perturbations: list[str] = opt(["synonyms"], "perturbations whose edits must pass the sentence check "
                                           "(the others keep meaning by construction, or change names on purpose)")
    compare_unconstrained: bool = opt(True, "also score the perturbations and the attack without the semantic "
                                            "constraints, in the same run (unconstrained_* columns)")

    def __post_init__(self) -> None:
        if not 0.0 <= self.severity <= 1.0:
            raise ValueError(f"severity must be in [0, 1], got {self.severity}")
        for name in self.perturbations:
            if name not in PERTURBATIONS:
                raise ValueError(f"unknown perturbation '{name}'{did_you_mean(name, PERTURBATIONS)}; "
                                 f"available: {', '.join(PERTURBATIONS)}")
        if len(set(self.perturbations)) != len(self.perturbations):
            raise ValueError(f"perturbations lists a name twice: {self.perturbations}")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError(f"max_examples must be at least 1 (or null for all), got {self.max_examples}")
        for name in self.checked_perturbations:
            if name not in PERTURBATIONS:
                raise ValueError(f"unknown checked perturbation '{name}'{did_you_mean(name, PERTURBATIONS)}")
        for name in ("sentence_similarity", "word_similarity", "max_words_changed"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.similarity_window < 1:
            raise ValueError(f"similarity_window must be at least 1 word, got {self.similarity_window}")
        if self.query_budget < 1:
            raise ValueError(f"query_budget must be at least 1, got {self.query_budget}")


def sample_indices(n: int, max_examples: int | None, seed: int) -> list[int]:
    """All indices, or a seeded sample of ``max_examples`` of them in ascending order."""
    if max_examples is None or n <= max_examples:
        return list(range(n))
    return sorted(int(i) for i in np.random.default_rng(seed).choice(n, size=max_examples, replace=False))


class RobustnessEvaluator:
    name = "robustness"
    needs_gradients = False
    options = RobustnessOptions

    def evaluate(self, predictor: Any, texts: list[str], references: list[int], labels: list[str],
                 *, seed: int = 0, context: EvalContext | None = None, **options: Any) -> EvalOutput:
        options.pop("bootstrap", None)  # the runner passes it to every evaluator; nothing here resamples
        cfg = from_dict(RobustnessOptions, options, "robustness options")
        if not texts:
            raise UserError("robustness: the evaluation split has no examples to score")
        log = context.log if context else (lambda _msg: None)
        wordnet = None
        if cfg.attack or NEEDS_WORDNET & set(cfg.perturbations):
            from .wordnet import get_wordnet

            wordnet = get_wordnet()  # fails early, with the install command, when the data is missing
        idx = sample_indices(len(texts), cfg.max_examples, seed)
        # Only the part the model reads is perturbed (and shown in the records): see evaluators/window.py.
        sub = read_by(predictor, [texts[i] for i in idx])
        refs = np.asarray([references[i] for i in idx])
        checked = [n for n in cfg.perturbations if cfg.constraints and n in cfg.checked_perturbations]
        encoder = SentenceEncoder() if checked or (cfg.attack and cfg.constraints) else None
        log(f"robustness: {len(cfg.perturbations)} perturbations at severity {cfg.severity} on {len(idx)} examples")
        metrics, clean_probs, perturbed, preds = _perturbations(cfg, predictor, sub, refs, idx, seed, checked,
                                                                encoder, log)
        clean = clean_probs.argmax(axis=1)
        records = _flip_records(idx, sub, refs, clean, perturbed, preds, labels)
        if cfg.attack:
            correct = np.flatnonzero(clean == refs)
            log(f"robustness: attacking {len(correct)} clean-correct examples, {cfg.query_budget} queries each")
            run = lambda constraints: greedy_attack(  # noqa: E731
                predictor, [sub[j] for j in correct], [int(refs[j]) for j in correct], budget=cfg.query_budget,
                seed=seed, keys=[idx[j] for j in correct], wordnet=wordnet, clean_probs=clean_probs[correct],
                constraints=constraints)
            tally = _constraints(cfg, encoder) if cfg.constraints else None
            results = run(tally)
            metrics += attack_metrics([r.success for r in results], [r.changed_fraction for r in results],
                                      [r.queries for r in results])
            if tally is not None:
                free_results = run(None) if cfg.compare_unconstrained else None
                metrics += attack_constraint_metrics(results, free_results, tally.report())
            records += [_attack_record(r, labels) for r in results]
        return EvalOutput(metrics=metrics, records=records)


def _perturbations(cfg: RobustnessOptions, predictor: Any, sub: list[str], refs: np.ndarray, idx: list[int],
                   seed: int, checked: list[str], encoder: Any, log: Any) -> tuple[list, np.ndarray, dict, dict]:
    """Perturb, constrain the checked perturbations' edits, predict everything in one call:
    the scores, the clean probabilities, the perturbed texts and their predictions."""
    free = {name: [perturb(name, text, cfg.severity, seed=seed, key=i) for i, text in zip(idx, sub)]
            for name in cfg.perturbations}
    tallies = {name: _constraints(cfg, encoder) for name in checked}
    perturbed = {name: constrain_texts(sub, batch, tallies[name]) if name in tallies else batch
                 for name, batch in free.items()}
    unchecked = {name: free[name] for name in checked if cfg.compare_unconstrained}
    batches = [sub, *perturbed.values(), *unchecked.values()]
    probs = predictor.predict_proba([t for batch in batches for t in batch])
    preds = [probs[len(sub) * (k + 1):len(sub) * (k + 2)].argmax(axis=1) for k in range(len(batches) - 1)]
    preds, free_preds = dict(zip(perturbed, preds)), dict(zip(unchecked, preds[len(perturbed):]))
    changed = {name: [new != old for new, old in zip(batch, sub)] for name, batch in perturbed.items()}
    log("robustness: texts each perturbation changed: "
        + ", ".join(f"{name} {sum(flags)}/{len(flags)}" for name, flags in changed.items()))
    clean = probs[:len(sub)].argmax(axis=1)
    metrics = perturbation_metrics(refs, clean, preds, changed)
    if checked:
        for name, tally in tallies.items():
            log(f"robustness: constraints rejected {tally.rejected} of {tally.checked} {name} edits")
        free_changed = {n: [new != old for new, old in zip(free[n], sub)] for n in free_preds}
        metrics += constraint_metrics(refs, clean, preds, changed, free_preds, free_changed,
                                      {n: t.report() for n, t in tallies.items()})
    return metrics, probs[:len(sub)], perturbed, preds


def _constraints(cfg: RobustnessOptions, encoder: SentenceEncoder) -> Constraints:
    return Constraints(sentence=cfg.sentence_similarity, window=cfg.similarity_window, word=cfg.word_similarity,
                       max_words_changed=cfg.max_words_changed, encoder=encoder)


def _flip_records(idx: list[int], texts: list[str], refs: np.ndarray, clean: np.ndarray,
                  perturbed: dict[str, list[str]], preds: dict[str, np.ndarray], labels: list[str]) -> list[dict]:
    """One row per clean-correct example whose prediction a perturbation changed."""
    rows = []
    for name, batch in perturbed.items():
        for j in np.flatnonzero((clean == refs) & (preds[name] != clean)):
            rows.append({"type": "flip", "idx": idx[j], "perturbation": name, "text": texts[j],
                         "perturbed": batch[j], "label": labels[refs[j]], "before": labels[clean[j]],
                         "after": labels[preds[name][j]]})
    return rows


def _attack_record(r: AttackResult, labels: list[str]) -> dict:
    return {"type": "attack", "idx": r.key, "text": r.text, "perturbed": r.adversarial,
            "label": labels[r.label], "before": labels[r.label], "after": labels[r.prediction],
            "success": r.success, "queries": r.queries, "words_changed": round(r.changed_fraction, 4),
            **({"edit_similarity": round(min(r.similarities), 4)} if r.similarities else {})}
