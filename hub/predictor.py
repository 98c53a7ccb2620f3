"""The predictor contract every backend answers, so evaluators and demos never care which runs.

``predict_proba(texts) -> np.ndarray [n, num_labels]`` and ``predict(texts) -> list[str]``;
``labels`` names the columns; ``engine`` says what actually runs (e.g. ``torch-fp32``).

:class:`BatchedPredictor` is the shared front half of every tokenizer-fed backend (torch and
every engine): tokenise all texts in one call, run each *distinct* model input once, in
length-sorted padded batches, and scatter the logits back. Evaluators send many texts that
the model cannot tell apart (a casing change under an uncased tokenizer, a whitespace change,
an edit past the truncation point), so the deduplication is keyed on the token ids the model
actually reads, not on the text. Hand-written: no library batches a fast tokenizer's output
this way.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)
CHUNK = 4096   # texts tokenised at a time; repeats are found across chunks too


@runtime_checkable
class Predictor(Protocol):
    labels: list[str]
    engine: str

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def predict(self, texts: Sequence[str]) -> list[str]: ...


class PredictorBase:
    """Shared ``predict`` on top of ``predict_proba``."""

    labels: list[str]
    engine: str

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, texts: Sequence[str]) -> list[str]:
        probs = self.predict_proba(texts)
        return [self.labels[i] for i in probs.argmax(axis=1)]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class BatchedPredictor(PredictorBase):
    """Subclasses implement :meth:`run` on one padded batch of numpy int64 arrays (logits out).

    Inputs longer than ``max_length`` are truncated with a warning (once per predictor: a
    long-document dataset would otherwise repeat it on every call), never a crash.
    ``truncated`` counts the texts the last call cut; ``distinct`` counts the model inputs it ran.
    """

    input_names: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")

    def __init__(self, tokenizer: Any, labels: list[str], *, engine: str, max_length: int = 128,
                 batch_size: int = 32, progress: bool = False) -> None:
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.engine = engine
        self.max_length = max_length
        self.batch_size = batch_size
        self.progress = progress
        self.truncated = 0          # texts cut to max_length by the last call
        self.distinct = 0           # distinct model inputs the last call ran
        self._warned = False

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _tokenize(self, texts: list[str]) -> tuple[dict[str, list[list[int]]], int]:
        """Unpadded token ids of every text (only the inputs the model takes), and how many were cut."""
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        names = [n for n in self.input_names if n in enc]
        if getattr(enc, "encodings", None):     # fast tokenizer: truncation keeps what it cut
            cut = sum(1 for e in enc.encodings if e.overflowing)
        else:                                   # slow tokenizer: a full window may have been cut
            cut = sum(1 for ids in enc["input_ids"] if len(ids) >= self.max_length)
        return {n: enc[n] for n in names}, cut

    def _pad(self, rows: dict[str, list[list[int]]], idx: Sequence[int]) -> dict[str, np.ndarray]:
        width = max(len(rows["input_ids"][i]) for i in idx)
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        fill = {"input_ids": self.tokenizer.pad_token_id or 0}
        out = {}
        for name, values in rows.items():
            arr = np.full((len(idx), width), fill.get(name, 0), dtype=np.int64)
            for r, i in enumerate(idx):
                seq = values[i]
                if left:
                    arr[r, width - len(seq):] = seq
                else:
                    arr[r, :len(seq)] = seq
            out[name] = arr
        if "attention_mask" in self.input_names and "attention_mask" not in out:
            lengths = np.array([len(rows["input_ids"][i]) for i in idx])
            span = np.arange(width)
            out["attention_mask"] = ((span >= width - lengths[:, None]) if left
                                     else (span < lengths[:, None])).astype(np.int64)
        return out

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        self.truncated = self.distinct = 0
        if not texts:
            return out
        # One row per distinct model input, keyed on a digest of its ids; texts are tokenised a
        # chunk at a time, so memory follows the chunk, not the split.
        seen: dict[bytes, int] = {}
        distinct = np.zeros_like(out)
        bar = None
        if self.progress and len(texts) > self.batch_size:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="predicting", unit="text")
        for c0 in range(0, len(texts), CHUNK):
            chunk = texts[c0:c0 + CHUNK]
            rows, cut = self._tokenize(chunk)
            self.truncated += cut
            where = np.empty(len(chunk), dtype=np.int64)
            new: list[int] = []                      # the first text of each input not seen before
            for k in range(len(chunk)):
                key = hashlib.blake2b(b"|".join(np.asarray(rows[n][k], dtype=np.int64).tobytes() for n in rows),
                                      digest_size=16).digest()
                if key not in seen:
                    seen[key] = len(seen)
                    new.append(k)
                where[k] = seen[key]
            order = np.asarray(new, dtype=np.int64)[np.argsort([len(rows["input_ids"][k]) for k in new],
                                                                kind="stable")]
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                distinct[where[idx]] = self.run(self._pad(rows, idx))
                if bar is not None:
                    bar.update(len(idx))
            if bar is not None:
                bar.update(len(chunk) - len(new))      # repeats cost nothing
            out[c0:c0 + len(chunk)] = distinct[where]
        if bar is not None:
            bar.close()
        self.distinct = len(seen)
        if self.truncated and not self._warned:
            self._warned = True
            log.warning("%s: %d text(s) longer than %d tokens were truncated (said once per predictor)",
                        self.engine, self.truncated, self.max_length)
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return softmax(self.logits(list(texts)).astype(np.float64)).astype(np.float32)
