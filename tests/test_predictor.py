"""The shared batching front of every predictor: distinct model inputs run once, results in order."""

from __future__ import annotations

import numpy as np
import pytest

from hub.predictor import BatchedPredictor
from tasks.text_classification.predict import TorchPredictor

LABELS = ["sport", "money", "music"]


class Recording(BatchedPredictor):
    """Logits from the ids themselves (sum and length of the real tokens), and every batch it got."""

    def __init__(self, tokenizer, **kw):
        super().__init__(tokenizer, LABELS, engine="recording", **kw)
        self.batches: list[dict[str, np.ndarray]] = []

    def run(self, inputs):
        self.batches.append(inputs)
        mask = inputs["attention_mask"]
        ids = np.where(mask == 1, inputs["input_ids"], 0)
        return np.stack([ids.sum(1), mask.sum(1), ids.max(1)], axis=1).astype(np.float32)


def rows_run(predictor: Recording) -> int:
    return sum(len(b["input_ids"]) for b in predictor.batches)


def test_texts_the_model_cannot_tell_apart_run_once(tiny):
    _, tokenizer = tiny
    predictor = Recording(tokenizer, max_length=8, batch_size=2)
    long = "the match goal team player coach league score season"     # more than 8 tokens
    texts = ["The Match", "the match", "the   match", long, long + " extra words here", "a song"]
    logits = predictor.logits(texts)
    # casing (uncased tokenizer) and whitespace give the same ids; the long texts are equal once cut
    assert predictor.distinct == 3 and rows_run(predictor) == 3
    assert predictor.truncated == 2
    np.testing.assert_array_equal(logits[0], logits[1])
    np.testing.assert_array_equal(logits[0], logits[2])
    np.testing.assert_array_equal(logits[3], logits[4])
    for text, row in zip(texts, logits):        # each row is what the text alone gives
        np.testing.assert_array_equal(Recording(tokenizer, max_length=8).logits([text])[0], row)


def test_batches_are_sorted_by_length_and_padded(tiny):
    _, tokenizer = tiny
    predictor = Recording(tokenizer, max_length=32, batch_size=2)
    texts = ["a b c d e f g", "a", "a b c", "a b"]
    predictor.logits(texts)
    widths = [b["input_ids"].shape[1] for b in predictor.batches]
    assert widths == sorted(widths)
    first = predictor.batches[0]
    assert first["attention_mask"].sum(1).tolist() == [3, 4]           # [CLS] a [SEP], [CLS] a b [SEP]
    assert first["input_ids"][0, 3] == tokenizer.pad_token_id


def test_left_padding_is_respected(tiny):
    _, tokenizer = tiny
    left = tokenizer.__class__.from_pretrained(tokenizer.name_or_path, padding_side="left")
    predictor = Recording(left, max_length=32, batch_size=4)
    logits = predictor.logits(["a b c d", "a"])
    mask = predictor.batches[0]["attention_mask"]
    assert mask[0].tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(logits, Recording(tokenizer, max_length=32).logits(["a b c d", "a"]))


def test_torch_predictor_matches_the_model(tiny, texts_and_reference):
    model, tokenizer = tiny
    texts, reference = texts_and_reference
    predictor = TorchPredictor(model, tokenizer, LABELS, max_length=64, batch_size=7)
    doubled = texts + [t.upper() for t in texts]
    logits = predictor.logits(doubled)
    assert predictor.distinct == len(set(texts))
    np.testing.assert_allclose(logits[:len(texts)], reference, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(logits[:len(texts)], logits[len(texts):])
    probs = predictor.predict_proba(texts)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    assert predictor.predict(texts) == [LABELS[i] for i in reference.argmax(1)]


def test_empty_input(tiny):
    _, tokenizer = tiny
    predictor = Recording(tokenizer)
    assert predictor.logits([]).shape == (0, 3) and predictor.predict_proba([]).shape == (0, 3)
    assert predictor.batches == []


@pytest.mark.parametrize("texts", [["x"] * 5, ["same text", "Same Text", "SAME TEXT"]])
def test_all_duplicates_make_one_row(tiny, texts):
    _, tokenizer = tiny
    predictor = Recording(tokenizer)
    logits = predictor.logits(texts)
    assert rows_run(predictor) == 1 and (logits == logits[0]).all()


def test_chunks_give_the_same_rows_and_repeats_across_chunks_run_once(tiny, monkeypatch):
    import hub.predictor

    _, tokenizer = tiny
    texts = ["a song", "the match", "A Song", "a band", "THE MATCH", "a song"]
    whole = Recording(tokenizer).logits(texts)
    monkeypatch.setattr(hub.predictor, "CHUNK", 2)
    chunked = Recording(tokenizer, batch_size=1)
    np.testing.assert_array_equal(chunked.logits(texts), whole)
    assert chunked.distinct == 3 and rows_run(chunked) == 3
