"""The app's loaded predictors: one per (variant, engine), bounded in number and in loads at once.

The Space serves this publicly, so what a request names must not decide how much memory the
app holds. A request names a variant (id, unique id prefix or name) and an engine ("torch" or
empty for the variant's own torch model, else an engine id, a unique id prefix, a backend
name or ``best``). :meth:`PredictorCache.get` first resolves both through the store to the
full ids, so every spelling of one engine shares one cache entry, and only then looks in
the cache:

- **LRU of** ``max_size`` **predictors** (``cache_size`` of ``build_app``/``launch``, else
  ``$EVALHUB_APP_CACHE_SIZE``, else 4). Loading a new one drops the least recently used,
  calling its ``close()`` if it has one; a request still answering from a dropped predictor
  finishes on it, and its memory goes when that request lets go.
- **At most** ``max_loads`` **loads at once** (``$EVALHUB_APP_MAX_LOADS``, else 1), held by a
  ``threading.BoundedSemaphore``: a burst of requests for different engines queues instead of
  reading every model into memory together.
- **One load per key**: the first request for a key loads it; others for the same key wait
  on its future and get the same predictor (or the same error).
- **A hit never waits behind a load**: the dict lock guards only the dict; loads run outside it.

Errors are ``gr.Error`` with a short message in the app's words: the store's own messages name
its absolute path and list every stored id, so they go to the server log only. The user's value
is shown through :func:`hub.errors.quote` (escaped, masked, cut).
"""

from __future__ import annotations

import gc
import logging
import os
import re
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any

import gradio as gr

from hub.errors import UserError, quote

log = logging.getLogger(__name__)

TORCH_MODEL = "torch"          # the engine choice meaning "the variant's own torch model"
CACHE_SIZE_ENV, DEFAULT_CACHE_SIZE = "EVALHUB_APP_CACHE_SIZE", 4   # a MiniLM predictor: ~100 MB
MAX_LOADS_ENV, DEFAULT_MAX_LOADS = "EVALHUB_APP_MAX_LOADS", 1      # loads are the memory peaks

Key = tuple[str, str]           # (variant id, engine id or TORCH_MODEL)


def limit(value: Any, name: str, env: str, default: int, what: str) -> int:
    """``value``, else ``$env``, else ``default``, as a whole number >= 1; UserError naming the source."""
    if value is None:
        value = os.environ.get(env, "").strip()
        if not value:
            return default
        where = f"{env}={quote(value)}"
    else:
        where = f"{name}={quote(value)}"
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        number = int(value.strip())
    if number is None or number < 1:
        raise UserError(f"{where}: expected a whole number of {what} >= 1")
    return number


class PredictorCache:
    """(variant id, engine id) -> loaded predictor; an LRU safe across the app's worker threads."""

    def __init__(self, store: Any, max_size: int | None = None, max_loads: int | None = None) -> None:
        self.store = store
        self.max_size = limit(max_size, "cache_size", CACHE_SIZE_ENV, DEFAULT_CACHE_SIZE, "predictors")
        self.max_loads = limit(max_loads, "max_loads", MAX_LOADS_ENV, DEFAULT_MAX_LOADS, "loads at once")
        self._predictors: OrderedDict[Key, Any] = OrderedDict()
        self._pending: dict[Key, Future] = {}
        self._lock = threading.Lock()        # guards the two dicts only; never held during a load
        self._loads = threading.BoundedSemaphore(self.max_loads)

    def __len__(self) -> int:
        with self._lock:
            return len(self._predictors)

    def keys(self) -> list[Key]:
        """The cached keys, least recently used first."""
        with self._lock:
            return list(self._predictors)

    def peek(self, key: Key) -> Any | None:
        """The cached predictor of a resolved key, or None; loads nothing, leaves the LRU order."""
        with self._lock:
            return self._predictors.get(key)

    def get(self, variant_ref: str | None, engine: str | None = None) -> tuple[Any, Any]:
        """(record, predictor) of a variant or one of its engines; gr.Error when it cannot load."""
        record, key = self.resolve(variant_ref, engine)
        return record, self._predictor(record, key)

    def resolve(self, variant_ref: str | None, engine: str | None = None) -> tuple[Any, Key]:
        """The variant's record and the cache key: its id and the engine's full id (or "torch")."""
        if not variant_ref:
            if not self.store.list_variants():
                raise gr.Error("The store has no variants yet: run `evalhub demo` first, then reload this page.")
            raise gr.Error("No variant is selected: pick one from the Variant list.")
        try:
            record = self.store.get_variant(str(variant_ref))
        except UserError:
            raise gr.Error(f"Unknown variant {quote(variant_ref)} (pick one from the Variant list).") from None
        if not engine or engine == TORCH_MODEL:
            return record, (record.id, TORCH_MODEL)
        try:
            found = self.store.get_engine(str(engine), variant_id=record.id)
        except UserError:
            raise gr.Error(f"Unknown engine {quote(engine)} for this variant "
                           "(pick one from the Engine list).") from None
        return record, (record.id, found.id)

    def _predictor(self, record: Any, key: Key) -> Any:
        with self._lock:
            if key in self._predictors:
                self._predictors.move_to_end(key)
                return self._predictors[key]
            future = self._pending.get(key)
            owner = future is None
            if owner:
                future = self._pending[key] = Future()
        if not owner:
            return future.result()          # the same predictor, or the same error, as the first request
        try:
            with self._loads:
                predictor = self._load(record, key[1])
        except UserError as exc:
            log.warning("app: cannot load %s / %s: %s", key[0], key[1], exc)
            what = "The torch model" if key[1] == TORCH_MODEL else f"Engine {quote(key[1])}"
            error = gr.Error(f"{what} of variant {quote(key[0])} could not be loaded (the server log says why): "
                             "pick another engine, or rebuild this one.")
            self._settle(key, future, error=error)
            raise error from None
        except BaseException as exc:
            self._settle(key, future, error=exc)
            raise
        self._settle(key, future, predictor=predictor)
        return predictor

    def _settle(self, key: Key, future: Future, predictor: Any = None, error: BaseException | None = None) -> None:
        """Store a loaded predictor (dropping the least recently used ones), then wake the waiters."""
        evicted: list[tuple[Key, Any]] = []
        with self._lock:
            del self._pending[key]
            if error is None:
                self._predictors[key] = predictor
                while len(self._predictors) > self.max_size:
                    evicted.append(self._predictors.popitem(last=False))
        if error is None:
            future.set_result(predictor)
        else:
            future.set_exception(error)
        if evicted:
            _close(evicted)
            evicted.clear()
            gc.collect()                    # a model caught in a reference cycle goes now, not at some later collection

    def _load(self, record: Any, engine: str) -> Any:
        """Read one predictor from the store: the variant's torch model, or an engine by full id."""
        if engine == TORCH_MODEL:
            from hub.registries import TASKS

            return TASKS.get(record.task).load_predictor(self.store, record)
        from hub.engines.build import load_engine_predictor

        return load_engine_predictor(self.store, self.store.get_engine(engine, variant_id=record.id))


def _close(evicted: list[tuple[Key, Any]]) -> None:
    """Call ``close()`` on each dropped predictor that has one; a failure is logged, not raised."""
    for key, predictor in evicted:
        close = getattr(predictor, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                log.exception("app: closing the predictor of %s / %s failed", *key)
