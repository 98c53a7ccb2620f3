"""What the Demo tab computes for a typed text, apart from gradio: limits, batched answers,
explanations, guard flags, perturbations and examples.

Pure functions over a predictor (``.labels``, ``.predict_proba``, and for windowing its
``.tokenizer`` and ``.max_length``), so they are tested without a server. The model-side work
reuses the evaluators: occlusion (``evaluators.explain.perturbation.leave_one_out``) and
integrated gradients (``evaluators.explain.gradients``) on the words the model reads
(``evaluators.explain.words.fit_words``), the guard (``evaluators.safety.guard``) and the
seeded perturbations of the robustness suite (``evaluators.robustness.perturb``).

User mistakes are :class:`Refused` with the sentence to show; the tab turns them into
``gr.Error`` (or, inside a batch, into that request's own answer).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

DEMO_PERTURBATIONS = ("char_noise", "casing", "synonyms", "contractions", "entities", "word_dropout")
PERTURBATION_NAMES = {"char_noise": "typos", "casing": "casing", "synonyms": "synonyms",
                      "contractions": "contractions", "entities": "entity swap", "word_dropout": "word dropout"}
DEMO_SEVERITY = 0.15      # the robustness suite's default share of eligible words touched
DEMO_SEED = 0
OCCLUSION, IG = "occlusion", "ig"
IG_STEPS = 32             # the explain evaluator's default


class Refused(Exception):
    """A request the demo will not answer; ``str()`` is the sentence the user sees."""


def text_problem(text: Any, max_chars: int) -> str | None:
    """Why ``text`` cannot be answered (empty, not text, too long), or None when it can."""
    if not isinstance(text, str) or not text.strip():
        return "The text box is empty: type or paste a sentence to classify, or click an example."
    if len(text) > max_chars:   # the app is public: one request must not tokenize megabytes
        return f"The text is {len(text):,} characters; the demo takes at most {max_chars:,}."
    return None


def check_text(text: Any, max_chars: int) -> str:
    """``text`` when it can be answered; Refused otherwise."""
    problem = text_problem(text, max_chars)
    if problem:
        raise Refused(problem)
    return text


def timed_proba(predictor: Any, texts: Sequence[str]) -> tuple[np.ndarray, float]:
    """``predict_proba(texts)`` and the milliseconds it took."""
    start = time.perf_counter()
    probs = np.asarray(predictor.predict_proba(list(texts)), dtype=np.float64)
    return probs, (time.perf_counter() - start) * 1000.0


def confidences(labels: Sequence[str], probs: Sequence[float]) -> dict[str, float]:
    return {label: float(p) for label, p in zip(labels, probs)}


@dataclass
class Answer:
    """One request's answer in a batch: its label probabilities, or why there are none."""

    probs: dict[str, float] | None = None
    error: str | None = None
    engine: str = ""
    ms: float = 0.0
    shared: int = 1           # requests answered by the same predict_proba call
    key: Any = None           # the resolved (variant, engine) it was answered by


def answer_batch(requests: Sequence[tuple[Any, Any, Any]], resolve: Callable[[Any, Any], Any],
                 load: Callable[[Any], Any], max_chars: int) -> list[Answer]:
    """Answer (variant, text, engine) requests: one ``predict_proba`` per resolved (variant, engine).

    ``resolve(variant, engine) -> key`` and ``load(key) -> predictor`` raise Refused for a bad
    name or a model that cannot load; that request (or group) gets the sentence as its answer
    and the others are answered all the same."""
    answers = [Answer() for _ in requests]
    groups: dict[Any, list[int]] = {}
    for i, (variant, text, engine) in enumerate(requests):
        try:
            check_text(text, max_chars)
            answers[i].key = resolve(variant, engine)
            groups.setdefault(answers[i].key, []).append(i)
        except Refused as exc:
            answers[i].error = str(exc)
    for key, members in groups.items():
        _answer_group(key, members, requests, load, answers)
    return answers


def _answer_group(key: Any, members: list[int], requests: Sequence[tuple], load: Callable[[Any], Any],
                  answers: list[Answer]) -> None:
    """Fill the answers of one (variant, engine) group from one predict_proba call."""
    try:
        predictor = load(key)
        probs, ms = timed_proba(predictor, [requests[i][1] for i in members])
    except Refused as exc:
        error = str(exc)
    except Exception:   # a bug in one group must not fail the other groups' answers
        log.exception("demo: answering a batch for %s failed", key)
        error = "The model failed on this text (the server log says why): try again or pick another engine."
    else:
        for i, row in zip(members, probs):
            answers[i] = Answer(confidences(predictor.labels, row), None, str(predictor.engine), ms, len(members), key)
        return
    for i in members:
        answers[i].error = error


class Timings:
    """The latest answer's (engine, ms, shared) per (variant, engine, text), bounded.

    The batched call records; the "answered by" line reads. gradio hands a batched function only
    the first request of its batch, so the key is the request's own content: two users who send
    the same text to the same engine at once shared that forward pass and its time."""

    def __init__(self, max_size: int = 256) -> None:
        self._rows: OrderedDict[tuple, tuple[str, float, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_size = max_size

    @staticmethod
    def key(model_key: Any, text: str) -> tuple:
        return (model_key, hashlib.sha1(text.encode("utf-8", "replace")).hexdigest())

    def put(self, key: tuple, answer: Answer) -> None:
        if answer.error:
            return
        with self._lock:
            self._rows[key] = (answer.engine, answer.ms, answer.shared)
            self._rows.move_to_end(key)
            while len(self._rows) > self.max_size:
                self._rows.popitem(last=False)

    def get(self, key: tuple) -> tuple[str, float, int] | None:
        with self._lock:
            return self._rows.get(key)


def timing_line(ms: float, shared: int) -> str:
    together = f", one forward pass shared by {shared} requests" if shared > 1 else ""
    return f" in {ms:,.1f} ms{together}"


# -- explanations -----------------------------------------------------------------------------------
@dataclass
class Explanation:
    words: list[str]
    scores: list[float]        # in [-1, 1]: the attribution over the largest absolute one
    label: str                 # the label explained: the one the engine predicts
    cut: bool                  # the text was longer than the model reads

    def highlighted(self) -> list[tuple[str, float]]:
        """``gr.HighlightedText`` value: each word with its score, spaces between words."""
        return [(word + (" " if i < len(self.words) - 1 else ""), round(score, 4))
                for i, (word, score) in enumerate(zip(self.words, self.scores))]


def scaled(values: np.ndarray) -> list[float]:
    """Values over their largest absolute one, so they lie in [-1, 1] (all zeros stay zeros)."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64))
    top = float(np.abs(values).max()) if values.size else 0.0
    return [float(v) for v in (values / top if top > 0 else values)]


def words_read(predictor: Any, text: str) -> tuple[list[str], bool]:
    """The words of ``text`` the predictor reads (its first ``max_length`` tokens), and whether
    that is fewer than all of them."""
    from evaluators.explain.words import fit_words

    words = fit_words([text], getattr(predictor, "tokenizer", None), getattr(predictor, "max_length", None))[0]
    return words, len(words) < len(text.split())


def explain(predictor: Any, text: str, method: str = OCCLUSION, twin: Any = None) -> Explanation:
    """Word attributions for the label ``predictor`` predicts: occlusion on ``predictor`` itself,
    or integrated gradients on ``twin`` (the variant's torch predictor)."""
    words, cut = words_read(twin if method == IG else predictor, text)
    if not words:
        raise Refused("The text has no words to explain.")
    base = np.asarray(predictor.predict_proba([" ".join(words)]), dtype=np.float64)
    target = int(base[0].argmax())
    if method == OCCLUSION:
        from evaluators.explain.perturbation import leave_one_out

        attrs = leave_one_out(predictor, [words], [target], base)[0]
    elif method == IG:
        from evaluators.explain.gradients import gradient_attributions

        attrs = gradient_attributions(twin.model, twin.tokenizer, twin.max_length, [words], [target], "ig",
                                      n_steps=IG_STEPS)[0][0]
    else:
        raise Refused(f"Unknown explanation method; pick {OCCLUSION} or {IG}.")
    return Explanation(words, scaled(attrs), predictor.labels[target], cut)


# -- safety guard -----------------------------------------------------------------------------------
def guard_report(text: str) -> dict:
    """What the safety guard flags in ``text``: flagged, reasons, toxicity, and the text with
    every PII span masked (the spans' own text is never returned)."""
    from evaluators.safety.guard import guard

    result = guard(text)
    return {"flagged": result.flagged, "reasons": list(result.reasons), "toxicity": round(result.toxicity, 4),
            "pii": [span.to_dict() for span in result.pii], "shown_text": result.redacted(text)}


# -- robustness playground --------------------------------------------------------------------------
def perturbed_texts(text: str, names: Sequence[str] = DEMO_PERTURBATIONS) -> list[tuple[str, str | None]]:
    """(name, perturbed text) for each perturbation, seeded; None where it cannot run here
    (synonyms without WordNet)."""
    from evaluators.robustness.perturb import perturb
    from hub.errors import UserError

    out = []
    for name in names:
        try:
            out.append((name, perturb(name, text, DEMO_SEVERITY, seed=DEMO_SEED, key="demo")))
        except UserError as exc:
            log.warning("demo: perturbation %s unavailable: %s", name, exc)
            out.append((name, None))
    return out


@dataclass
class Playground:
    """The robustness playground for one text."""

    rows: list[list[Any]]      # perturbation, perturbed text, prediction, Δp of the original prediction, flipped
    changed: int               # perturbations that edited the text
    flips: int                 # of those, the ones that change the prediction
    label: str                 # the original prediction
    cut: bool                  # only the part of the text the model reads was perturbed

    def summary(self) -> str:
        if not self.changed:
            return "No perturbation could edit this text."
        text = (f"**{self.flips} of {self.changed} perturbations flip the prediction** (from **{self.label}**); "
                "Δp is the change in the probability of the original prediction.")
        return text + (" The text is longer than the model reads: only that part is perturbed." if self.cut else "")


def perturbation_table(predictor: Any, text: str) -> Playground:
    """Every demo perturbation of the part of ``text`` the predictor reads, and its prediction;
    the original and every perturbed text go through one ``predict_proba`` call."""
    from evaluators.window import read_by

    visible = read_by(predictor, [text])[0]
    edits = perturbed_texts(visible)
    changed = [(name, new) for name, new in edits if new is not None and new != visible]
    probs = np.asarray(predictor.predict_proba([visible] + [new for _, new in changed]), dtype=np.float64)
    target = int(probs[0].argmax())
    rows, flips, seen = [], 0, dict(zip([n for n, _ in changed], probs[1:]))
    for name, new in edits:
        label = PERTURBATION_NAMES[name]
        if name not in seen:
            why = "unavailable here" if new is None else "nothing to edit in this text"
            rows.append([label, f"({why})", "", None, ""])
            continue
        row = seen[name]
        flipped = int(row.argmax()) != target
        flips += flipped
        rows.append([label, new, predictor.labels[int(row.argmax())], round(float(row[target] - probs[0, target]), 4),
                     "✔" if flipped else ""])
    return Playground(rows, len(changed), flips, predictor.labels[target], cut=visible != text)


# -- examples ---------------------------------------------------------------------------------------
def split_examples(store: Any, variant_id: str | None, per_label: int = 2, max_chars: int = 10_000) -> list[str]:
    """A few texts of each label from the newest test-split run of the variant that stored
    predictions (labels in first-seen order); empty when there is none."""
    if not variant_id:
        return []
    for run in sorted(store.runs(variant_id), key=lambda r: r["created_at"], reverse=True):
        if run.get("split") != "test":
            continue
        rows = store.predictions(run["id"])
        if rows:
            return pick_per_label(rows, per_label, max_chars)
    return []


def pick_per_label(rows: Sequence[dict], per_label: int, max_chars: int) -> list[str]:
    """The first ``per_label`` texts of every label, each label's in turn."""
    by_label: dict[str, list[str]] = {}
    for row in rows:
        texts = by_label.setdefault(str(row.get("label")), [])
        if len(texts) < per_label and row.get("text") and len(row["text"]) <= max_chars:
            texts.append(row["text"])
    return [text for texts in by_label.values() for text in texts]
