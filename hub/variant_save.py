"""Write a trained model into the store as a variant with its lineage (every task).

Full fine-tuning stores ``model/``. A PEFT run stores the adapter in ``adapter/`` and,
where the method allows it, a merged copy in ``model/`` (faster to serve, no peft needed
at inference). The folder appears in the store only when every file is written.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hub.fsutil import write_json_atomic
from hub.store import VariantRecord
from hub.versions import package_versions


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().rsplit("/", 1)[-1]).strip("-")[:24] or "x"


def new_variant_id(cfg: Any) -> str:
    method = "full" if cfg.peft.method == "none" else cfg.peft.method.replace("_", "-")
    return f"{slug(cfg.data.source)}-{slug(cfg.model.name)}-{method}-{uuid.uuid4().hex[:6]}"


def _portable(run_config: dict) -> dict:
    """The run config with local model and data paths made absolute, so the variant can be
    evaluated (its data re-read, its base reloaded) from any working folder. The config hash
    stays that of the config as written."""
    from hub.embedded_data import embedded_datasets
    from hub.models import ALIASES

    def absolute(value: str, names: Any) -> str:
        path = Path(value).expanduser()
        return value if value in names or not path.exists() else str(path.resolve())

    run_config["model"]["name"] = absolute(run_config["model"]["name"], ALIASES)
    run_config["data"]["source"] = absolute(run_config["data"]["source"], embedded_datasets())
    return run_config


def save_variant(store: Any, cfg: Any, model: Any, tokenizer: Any, state: Any, *, dataset: dict,
                 labels: list[str] = ()) -> str:
    """Store the trained ``model``; ``dataset``: what the variant's data was (source, columns,
    split hashes and sizes, warnings); ``labels``: its classes, for a task that has them."""
    from hub.registries import PEFT_METHODS

    variant_id = new_variant_id(cfg)
    is_peft = cfg.peft.method != "none"
    mergeable = is_peft and cfg.peft.merge and PEFT_METHODS.get(cfg.peft.method).mergeable
    record = VariantRecord(
        id=variant_id,
        name=cfg.name or variant_id.rsplit("-", 1)[0],
        task=cfg.task, base_model=cfg.model.name, peft_method=cfg.peft.method,
        labels=list(labels), dataset=dataset,
        peft_config=_peft_config(model) if is_peft else {},
        hyperparameters=asdict(cfg.train), run_config=_portable(cfg.to_dict()), config_hash=cfg.hash(),
        seed=cfg.seed, versions=package_versions(),
        has_merged=not is_peft or mergeable, has_adapter=is_peft,
        train_summary={"steps": state.step, "best_step": state.best_step,
                       "best_validation": state.best_metric, "history": state.history,
                       "trainable_parameters": _trainable(model)},
    )
    with store.stage_variant(variant_id) as tmp:
        tokenizer.save_pretrained(tmp / "tokenizer")
        if is_peft:
            model.save_pretrained(tmp / "adapter")
            if mergeable:
                model.merge_and_unload().save_pretrained(tmp / "model")
        else:
            model.save_pretrained(tmp / "model")
        write_json_atomic(tmp / "variant.json", asdict(record))
    store.add_variant(record)
    return variant_id


def _peft_config(model: Any) -> dict:
    config = model.peft_config["default"].to_dict()
    return {k: (sorted(v) if isinstance(v, set) else v) for k, v in config.items()}


def _trainable(model: Any) -> dict:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "fraction": trainable / max(total, 1)}
