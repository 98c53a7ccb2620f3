"""Text generation's side of the shared training loop (:mod:`hub.training`).

Conversations are encoded with the tokenizer's chat template and the loss counts only the
assistant's tokens (``encode.encode_chat``); validation reports that loss and its
perplexity. The model is resolved once per run (the ``smollm2`` alias is converted into the
store's model cache on first use) and the variant keeps the alias, so its config hash is
that of the config as written.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable

import torch

from hub.training import TrainHooks, run_training
from hub.variant_save import save_variant

log = logging.getLogger(__name__)


def model_cache(store: Any) -> Path:
    """Where converted models live in a store."""
    return store.root / "cache" / "models"


class GenerationHooks(TrainHooks):
    peft_task_type = "CAUSAL_LM"
    forward_kwargs = {"use_cache": False}   # training never reads the key/value cache: do not build it

    def __init__(self, source: str) -> None:
        self.source = source        # the resolved model: a folder, or a Hub id

    def load_data(self, cfg: Any) -> Any:
        from tasks.text_generation.data import load_chat_data

        return load_chat_data(cfg.data)

    def load_tokenizer(self, cfg: Any) -> Any:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.source, revision=cfg.model.revision)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    def dataloaders(self, cfg: Any, data: Any, tokenizer: Any) -> tuple[Any, Any]:
        from torch.utils.data import DataLoader

        from hub.errors import UserError
        from tasks.text_generation.encode import make_collator, pack

        if "validation" not in data.splits or not data.splits["validation"]:
            raise UserError(f"{cfg.data.source}: no validation split; set data.validation_fraction above 0")
        t = cfg.train

        def encoded(split: str) -> list[dict]:
            rows = encode_split(tokenizer, data.splits[split], cfg.model.max_length, f"{cfg.data.source} {split}")
            return pack(rows, cfg.model.max_length) if t.packing and split == "train" else rows

        collate = make_collator(tokenizer)
        generator = torch.Generator().manual_seed(cfg.seed)
        train_dl = DataLoader(encoded("train"), batch_size=t.batch_size, shuffle=True, collate_fn=collate,
                              generator=generator, num_workers=t.num_workers)
        eval_dl = DataLoader(encoded("validation"), batch_size=t.eval_batch_size, shuffle=False, collate_fn=collate)
        return train_dl, eval_dl

    def load_model(self, cfg: Any, data: Any) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.source, revision=cfg.model.revision, dtype=torch.float32,
                                                    use_safetensors=True)

    def evaluate(self, model: Any, dataloader: Any, accelerator: Any) -> dict[str, float]:
        """Loss per assistant token over the validation split (all processes), and its perplexity."""
        model.eval()
        total, tokens = 0.0, 0
        with torch.no_grad():
            for batch in dataloader:
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                labels = batch["labels"][:, 1:]
                nll = torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels,
                                                        ignore_index=-100, reduction="sum")
                count = (labels != -100).sum()
                summed = accelerator.gather_for_metrics(torch.stack([nll, count.float()]).unsqueeze(0))
                total += float(summed[:, 0].sum())
                tokens += int(summed[:, 1].sum())
        model.train()
        loss = total / max(tokens, 1)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}

    def trains_on(self, data: Any) -> dict:
        return {"hashes": data.hashes}

    def save(self, store: Any, cfg: Any, model: Any, tokenizer: Any, data: Any, state: Any) -> str:
        dataset = {"source": cfg.data.source, "hashes": data.hashes,
                   "sizes": {split: len(rows) for split, rows in data.splits.items()}, "warnings": data.warnings}
        return save_variant(store, cfg, model, tokenizer, state, dataset=dataset)


def encode_split(tokenizer: Any, examples: list[dict], max_length: int, where: str) -> list[dict]:
    """Training rows of one split; the conversations cut to ``max_length`` are counted and said in one line."""
    from tasks.text_generation.encode import CUT_NOTE, encode_chat

    cut: list[int] = []
    rows = [encode_chat(tokenizer, example["messages"], max_length, on_cut=lambda: cut.append(1))
            for example in examples]
    if cut:
        log.warning("%s: %d of %d conversations are longer than model.max_length=%d tokens and are cut from the "
                    "left of the prompt (%s); raise model.max_length to keep them whole",
                    where, len(cut), len(rows), max_length, CUT_NOTE)
    return rows


def resolve_source(cfg: Any, store: Any) -> str:
    from tasks.text_generation.model import resolve_causal_lm

    return resolve_causal_lm(cfg.model.name, model_cache(store), revision=cfg.model.revision)


def train(cfg: Any, store: Any, *, resume: bool = False, show_progress: bool = True,
          on_step: Callable[[int, dict], None] | None = None, data: Any = None) -> str | None:
    """Fine-tune a causal LM on chat data per ``cfg`` and store the variant; returns its id."""
    return run_training(GenerationHooks(resolve_source(cfg, store)), cfg, store, resume=resume,
                        show_progress=show_progress, on_step=on_step, data=data)
