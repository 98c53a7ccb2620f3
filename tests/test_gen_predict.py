"""The torch generation predictor on a tiny random Llama: batching never changes greedy output,
streaming gives the same text, long prompts are cut from the left, perplexity is per example."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture

PROMPTS = ["my printer is not printing", "hello", [{"role": "user", "content": "the screen is flickering"}],
           "forgot password for the internet router, what now?", "usb"]


def lively(folder):
    """The fixture's model with its matrices scaled up: at the default init (std 0.02) a random
    model repeats one token, which would make every comparison below trivially true."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(10)
    return model, AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def predictor(tiny_llama_dir):
    from tasks.text_generation.predict import GenerationPredictor

    model, tok = lively(tiny_llama_dir)
    return GenerationPredictor(model, tok, max_new_tokens=12, batch_size=3)


def test_greedy_batch_equals_one_by_one(predictor):
    together = predictor.generate(PROMPTS)
    assert predictor.last_stats["new_tokens"] > 0 and predictor.last_stats["ttft_s"] is not None
    alone = [predictor.generate([p])[0] for p in PROMPTS]
    assert together == alone
    assert len(set(together)) > 1            # the model is lively enough for this to mean something
    ids = predictor.token_ids(PROMPTS, 6)
    assert ids == [predictor.token_ids([p], 6)[0] for p in PROMPTS]
    assert all(0 < len(r) <= 6 for r in ids)
    assert predictor.generate([]) == [] and predictor.token_ids([], 4) == []


def test_sampling_is_seeded_and_batch_independent(predictor):
    a = predictor.generate(PROMPTS[:3], do_sample=True, temperature=1.5, seed=7)
    assert a == predictor.generate(PROMPTS[:3], do_sample=True, temperature=1.5, seed=7)
    assert a != predictor.generate(PROMPTS[:3], do_sample=True, temperature=1.5, seed=8)


def test_stream_joins_to_generate_and_stops_early(predictor):
    pieces = list(predictor.stream(PROMPTS[0]))
    assert len(pieces) >= 1 and "".join(pieces) == predictor.generate([PROMPTS[0]])[0]
    it = predictor.stream(PROMPTS[3], max_new_tokens=100)
    next(it)
    it.close()                                   # the generating thread is stopped and joined
    import threading
    assert not [t for t in threading.enumerate() if t.name.endswith("-stream")]
    assert predictor.last_stats["new_tokens"] < 100


def test_long_prompt_is_cut_from_the_left_with_one_warning(tiny_llama_dir, caplog):
    from tasks.text_generation.predict import GenerationPredictor

    model, tok = lively(tiny_llama_dir)
    p = GenerationPredictor(model, tok, max_new_tokens=8, context_length=40)
    long = "check the cable and restart it " * 30
    with caplog.at_level(logging.WARNING):
        out = p.generate([long, "hello"])
        p.generate([long])
    assert len(out) == 2 and p.truncated == 1
    assert sum("cut from the left" in r.message for r in caplog.records) == 1
    rows = p.encode([long], 8)
    assert len(rows[0]) == 32 and rows[0][-3:] == tok(tok.apply_chat_template(
        [{"role": "user", "content": long}], add_generation_prompt=True, tokenize=False))["input_ids"][-3:]


def test_bad_lengths_are_user_errors(predictor):
    from hub.errors import UserError

    with pytest.raises(UserError, match="no room"):
        predictor.generate(["hi"], max_new_tokens=10_000)
    with pytest.raises(UserError):
        predictor.generate(["hi"], max_new_tokens=0)


def test_first_step_logits_and_perplexity_do_not_depend_on_the_batch(predictor):
    logits = predictor.first_step_logits(PROMPTS)
    assert logits.shape == (len(PROMPTS), predictor.model.config.vocab_size) and logits.dtype == np.float32
    assert np.allclose(logits[3], predictor.first_step_logits([PROMPTS[3]])[0], atol=1e-4)
    assert logits[0].argmax() == predictor.token_ids([PROMPTS[0]], 1)[0][0]
    refs = ["check the cable", "hello how can I help", "update the display driver", "reset it", ""]
    ppl = predictor.perplexity(PROMPTS, refs)
    assert all(math.isfinite(x) and x > 0 for x in ppl[:4]) and math.isnan(ppl[4])
    assert ppl[2] == pytest.approx(predictor.perplexity([PROMPTS[2]], [refs[2]])[0], rel=1e-4)
