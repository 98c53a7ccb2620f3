"""Text classification's side of the shared training loop (:mod:`hub.training`).

The data is labelled text (``hub.data``), the model a ``*ForSequenceClassification`` with a
new head for the data's labels, validation reports accuracy, macro F1 and loss.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from hub.data import load_data
from hub.errors import UserError
from hub.models import load_classifier, load_tokenizer
from hub.variant_save import save_variant
from hub.training import TrainHooks, loop_position, run_training  # noqa: F401 - loop_position re-exported
from tasks.text_classification.checks import check_positions
from tasks.text_classification.data import make_dataloader


class ClassificationHooks(TrainHooks):
    peft_task_type = "SEQ_CLS"

    def load_data(self, cfg: Any) -> Any:
        return load_data(cfg.data)

    def load_tokenizer(self, cfg: Any) -> Any:
        from transformers import AutoConfig

        tokenizer = load_tokenizer(cfg.model.name, revision=cfg.model.revision,
                                   trust_remote_code=cfg.model.trust_remote_code)
        check_positions(cfg, AutoConfig.from_pretrained(tokenizer.name_or_path, revision=cfg.model.revision,
                                                        trust_remote_code=cfg.model.trust_remote_code))
        return tokenizer

    def dataloaders(self, cfg: Any, data: Any, tokenizer: Any) -> tuple[Any, Any]:
        if "validation" not in data.splits:
            raise UserError(f"{cfg.data.source}: no validation split; set data.validation_fraction above 0")
        t = cfg.train
        train_dl = make_dataloader(data.splits["train"], tokenizer, cfg.model.max_length, t.batch_size,
                                   shuffle=True, seed=cfg.seed, num_workers=t.num_workers)
        eval_dl = make_dataloader(data.splits["validation"], tokenizer, cfg.model.max_length,
                                  t.eval_batch_size, shuffle=False, seed=cfg.seed)
        return train_dl, eval_dl

    def load_model(self, cfg: Any, data: Any) -> Any:
        return load_classifier(cfg.model.name, data.labels, revision=cfg.model.revision,
                               trust_remote_code=cfg.model.trust_remote_code)

    def evaluate(self, model: Any, dataloader: Any, accelerator: Any) -> dict[str, float]:
        return evaluate(model, dataloader, accelerator)

    def trains_on(self, data: Any) -> dict:
        return {"hashes": data.hashes, "labels": data.labels}

    def save(self, store: Any, cfg: Any, model: Any, tokenizer: Any, data: Any, state: Any) -> str:
        dataset = {"source": cfg.data.source, "text_column": cfg.data.text_column,
                   "label_column": cfg.data.label_column, "hashes": data.hashes,
                   "sizes": data.report.sizes, "warnings": data.report.warnings}
        return save_variant(store, cfg, model, tokenizer, state, dataset=dataset, labels=data.labels)


def train(cfg: Any, store: Any, *, resume: bool = False, show_progress: bool = True,
          on_step: Callable[[int, dict], None] | None = None, data: Any = None) -> str | None:
    """Fine-tune per ``cfg`` and store the variant; returns its id on the main process.

    ``data``: the splits :func:`~tasks.text_classification.checks.check_run` already loaded for
    ``cfg`` (read again when not given)."""
    return run_training(ClassificationHooks(), cfg, store, resume=resume, show_progress=show_progress,
                        on_step=on_step, data=data)


def evaluate(model: Any, dataloader: Any, accelerator: Any) -> dict[str, float]:
    """Validation accuracy, macro F1 and loss over all processes (gather_for_metrics drops padding)."""
    from sklearn.metrics import f1_score

    model.eval()
    preds, refs, losses = [], [], []
    with torch.no_grad():
        for batch in dataloader:
            out = model(**batch)
            logits, labels = accelerator.gather_for_metrics((out.logits, batch["labels"]))
            losses.append(torch.nn.functional.cross_entropy(logits.float(), labels, reduction="sum").item())
            preds.append(logits.argmax(-1).cpu())
            refs.append(labels.cpu())
    model.train()
    preds_t, refs_t = torch.cat(preds), torch.cat(refs)
    return {"accuracy": (preds_t == refs_t).float().mean().item(),
            "f1_macro": float(f1_score(refs_t.numpy(), preds_t.numpy(), average="macro", zero_division=0)),
            "loss": sum(losses) / len(refs_t)}
