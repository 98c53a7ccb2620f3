"""Metrics as local `evaluate` modules, loaded offline.

Each metric is a folder `<name>/<name>.py` in the layout of evaluate's own `metrics/`
(a `Metric` subclass with `_info` and `_compute`), so `evaluate.load` on the folder path
gives a normal `EvaluationModule`. Loading a local path never touches the network:
`evaluate.loading.evaluation_module_factory` sends an existing `<dir>/<dir-name>.py` to
`LocalEvaluationModuleFactory` before any Hub lookup, and that factory only copies the
script into evaluate's modules cache (`HF_MODULES_CACHE`) and imports it from there.
Only bare names such as "accuracy" go to the Hub, which is why we always pass a path.

The scripts repeat each other's boilerplate (features, argument checks) on purpose: evaluate
copies each script alone into its cache and imports it there, so a metric script can import
libraries but not a shared helper of ours, as in evaluate's own `metrics/` folders.
"""

from __future__ import annotations

import threading
from pathlib import Path

import evaluate

from hub.errors import UserError, did_you_mean

METRICS_DIR = Path(__file__).resolve().parent

_cache: dict[str, evaluate.EvaluationModule] = {}
_lock = threading.Lock()


def available_metrics() -> list[str]:
    """Names of the metric folders here: those holding a `<name>/<name>.py` script."""
    return sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load the local evaluate module `name`, once per process.

    Raises UserError for an unknown name, with the closest match and the available ones.
    The module keeps its data in memory (no arrow cache files or file locks under
    ~/.cache/huggingface/metrics); a cached module is shared, so do not call `compute`
    on the same metric from two threads at once.
    """
    with _lock:
        if name not in _cache:
            _cache[name] = _load_uncached(name)
        return _cache[name]


def _load_uncached(name: str) -> evaluate.EvaluationModule:
    available = available_metrics()
    if name not in available:
        raise UserError(
            f"metric {name!r}: unknown{did_you_mean(name, available)}; "
            f"available: {', '.join(available)}"
        )
    # The script path (not the folder) is the unambiguous local form for evaluate.load.
    return evaluate.load(str(METRICS_DIR / name / f"{name}.py"), keep_in_memory=True)


def clear_cache() -> None:
    """Forget loaded modules (tests use this to load afresh)."""
    with _lock:
        _cache.clear()
