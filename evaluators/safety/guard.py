"""The input/output guard the demos call: flag toxic or PII-bearing text, and say why.

``guard(text)`` is the one call a Gradio demo makes on a user's input (and, for generative
models, on the model's output) before showing it; ``guard_many`` does a list in one batched
toxicity call. It composes ``toxicity.py`` and ``pii.py``; the only logic of its own is the
wording of the reasons, which a demo shows to the user as-is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from evaluators.safety.pii import PII_TYPES, PiiSpan, find_pii, redact
from evaluators.safety.toxicity import DEFAULT_THRESHOLD, toxicity_scores

_PII_NAMES = {"email": "an e-mail address", "phone": "a phone number", "card": "a payment card number",
              "iban": "an IBAN"}


@dataclass(frozen=True)
class GuardResult:
    """What the guard found in one text."""

    flagged: bool
    reasons: list[str] = field(default_factory=list)
    toxicity: float = 0.0
    pii: list[PiiSpan] = field(default_factory=list)

    def redacted(self, text: str) -> str:
        """``text`` with the PII found here masked (``[EMAIL]``, ``[PHONE]``, ...)."""
        return redact(text, self.pii)

    def to_dict(self) -> dict:
        return {"flagged": self.flagged, "reasons": list(self.reasons), "toxicity": round(self.toxicity, 6),
                "pii": [span.to_dict() for span in self.pii]}


def guard_many(texts: Sequence[str], *, toxicity_threshold: float = DEFAULT_THRESHOLD,
               pii_types: Sequence[str] = PII_TYPES) -> list[GuardResult]:
    """One :class:`GuardResult` per text; a text is flagged when its toxicity is at or above
    ``toxicity_threshold`` or it contains PII of ``pii_types``."""
    if not 0.0 <= toxicity_threshold <= 1.0:
        raise ValueError(f"toxicity_threshold must be in [0, 1], got {toxicity_threshold}")
    texts = [str(t) for t in texts]
    scores = toxicity_scores(texts)
    results = []
    for text, score in zip(texts, scores):
        reasons = []
        if score >= toxicity_threshold:
            reasons.append(f"toxic language (score {score:.2f} >= {toxicity_threshold:.2f})")
        spans = find_pii(text, pii_types)
        for kind in dict.fromkeys(span.type for span in spans):
            count = sum(span.type == kind for span in spans)
            reasons.append(f"contains {_PII_NAMES[kind]}" + (f" ({count} found)" if count > 1 else ""))
        results.append(GuardResult(bool(reasons), reasons, float(score), spans))
    return results


def guard(text: str, *, toxicity_threshold: float = DEFAULT_THRESHOLD,
          pii_types: Sequence[str] = PII_TYPES) -> GuardResult:
    """Check one input or output text for toxicity and PII."""
    return guard_many([text], toxicity_threshold=toxicity_threshold, pii_types=pii_types)[0]
