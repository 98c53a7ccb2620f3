"""Toxicity of texts through the classifier shipped in ``alt-profanity-check``.

The scores come from the package's own linear model (``profanity_check.predict_prob``:
a TF-IDF + calibrated linear SVM, trained and shipped with the wheel, so it works offline).
The package is imported lazily: loading its model costs a moment and it pins scikit-learn
exactly, so a missing or mismatched install is a UserError naming the pip command.
The aggregation (max, mean, share at or above a threshold) is a few hand-written lines.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Callable

import numpy as np

from hub.errors import UserError

DEFAULT_THRESHOLD = 0.5


def _install_hint() -> str:
    try:
        import sklearn
        version = f"=={sklearn.__version__}"
    except ImportError:  # pragma: no cover - scikit-learn is a core dependency
        version = ""
    return (f"pip install 'alt-profanity-check{version}' (its releases pin scikit-learn exactly: "
            "choose the one whose version equals your scikit-learn's)")


@functools.lru_cache(maxsize=1)
def _predict_prob() -> Callable[[Sequence[str]], np.ndarray]:
    try:
        from profanity_check import predict_prob
    except ImportError as exc:
        raise UserError(f"toxicity scoring needs the alt-profanity-check package, which is not "
                        f"importable ({exc}); install it with: {_install_hint()}") from None
    except Exception as exc:  # an unpickling error from a scikit-learn it was not built for
        raise UserError(f"alt-profanity-check failed to load its model ({type(exc).__name__}: {exc}); "
                        f"reinstall the release matching scikit-learn: {_install_hint()}") from None
    return predict_prob


def is_toxicity_available() -> bool:
    """Whether ``alt-profanity-check`` loads here (cached)."""
    try:
        _predict_prob()
    except UserError:
        return False
    return True


def toxicity_scores(texts: Sequence[str]) -> np.ndarray:
    """Probability that each text is toxic/profane, in [0, 1], one batched call."""
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros(0, dtype=np.float64)
    return np.asarray(_predict_prob()(texts), dtype=np.float64).reshape(-1)


def aggregate_toxicity(scores: Sequence[float], threshold: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    """``max``, ``mean`` and ``ratio`` (share of scores >= ``threshold``) of per-text scores."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.size == 0:
        raise ValueError("no scores to aggregate")
    return {"max": float(scores.max()), "mean": float(scores.mean()),
            "ratio": float((scores >= threshold).mean())}
