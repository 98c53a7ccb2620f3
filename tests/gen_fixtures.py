"""A tiny causal LM with a chat template, built offline, for every text-generation test.

:func:`tiny_llama` saves a random 2-layer ``LlamaForCausalLM`` and a byte-level BPE tokenizer
trained in-process on a few hundred fixed lines, wrapped in ``PreTrainedTokenizerFast`` with
SmolLM2's ChatML-like template (``<|im_start|>role\\ncontent<|im_end|>\\n``). Nothing is
downloaded and the real 98 MB GGUF is not needed; the same seed gives the same folder, and
building it takes well under a second. Use the session fixture :func:`tiny_llama_dir`::

    from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture
"""

from __future__ import annotations

from pathlib import Path

import pytest

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]   # pad, bos, eos as in SmolLM2 (pad apart here)

# SmolLM2-135M-Instruct's template, with a shorter default system turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_WORDS = ("my printer is not printing check the cable and restart it the computer won't turn on "
          "hold power button for ten seconds internet router reset password forgot screen flickering "
          "update the display driver mouse battery usb port sound volume output device webcam system "
          "overheating clean dust vents you are a helpful assistant hello how can I help today thanks").split()


def _corpus(lines: int = 300) -> list[str]:
    """Fixed pseudo-sentences (a linear congruential walk over the word list): deterministic."""
    out, state = [], 12345
    for _ in range(lines):
        words = []
        for _ in range(8):
            state = (state * 1103515245 + 12345) % 2**31
            words.append(_WORDS[state % len(_WORDS)])
        out.append(" ".join(words).capitalize() + ".")
    return out


def tiny_tokenizer():
    """A byte-level BPE fast tokenizer (vocab 512) with bos/eos/pad and the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE,
                                   model_max_length=256)


def tiny_llama(tmp_path: Path) -> Path:
    """Save a random tiny LlamaForCausalLM and its chat tokenizer under ``tmp_path``; return the folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(tmp_path) / "tiny-llama"
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny chat LM folder for the whole test session (treat it as read-only)."""
    return tiny_llama(tmp_path_factory.mktemp("gen-model"))
