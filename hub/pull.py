"""``evalhub pull``: a Hub model, a PEFT adapter or a local ``save_pretrained`` folder as a variant.

The variant is laid out like a trained one (``model/``, ``tokenizer/``, ``adapter/`` for an
adapter, ``variant.json``) so ``evalhub eval``, ``build-engine`` and the app use it unchanged.
Its record says it came from elsewhere: ``kind = "external"``, no training data hashes, and
where it came from under ``train_summary["external"]`` (source, repo id, revision asked,
commit oid resolved, content hash of the files read; plus the lineage an evalhub push
recorded, or what the model card says). The record keeps its schema: older evalhub
versions read a pulled variant as any other.

With ``data``, the dataset's labels must be the model's labels after ``label_map`` (model label
-> dataset label); the stored config's ``id2label`` is rewritten to the dataset's names, and
``run_config["data"]`` is what ``evalhub eval`` reads. Without ``data`` there is nothing to
score it on until it is pulled again with one.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hub.errors import UserError, first_line, quote, quote_list
from hub.pull_source import (Origin, adapter_folder, fetch, read_json, refuse_custom_code, tokenizer_folder)

# what an evalhub push's evalhub.json says that the pulled record keeps (no local paths, no data hashes)
LINEAGE_KEYS = ("id", "name", "base_model", "peft_method", "config_hash", "seed", "labels", "created_at")
HEAD_KEYS = ("classifier.weight", "score.weight", "classifier.out_proj.weight")   # a head's last projection


def pull_model(store: Any, source: str, *, revision: str | None = None, task: str = "text-classification",
               name: str | None = None, data: str | None = None, label_map: dict[str, str] = {}) -> str:
    """Bring ``source`` in as a variant scored like any other; returns the new variant's id."""
    _check_task(task)
    origin = fetch(source, revision)
    what = f"model {quote(source)}"
    refuse_custom_code(origin.folder, what)
    adapter = adapter_folder(origin.folder)
    if adapter is None and not (origin.folder / "config.json").is_file():
        raise UserError(f"{what} has no config.json (nor adapter_config.json); give a folder written by "
                        "save_pretrained or a Hub model repo")
    lineage = read_lineage(origin.folder)
    key = json.dumps([origin.source, origin.commit or origin.content_hash, name, data, sorted(label_map.items())])
    digest = hashlib.sha256(key.encode()).hexdigest()
    variant_id = f"{_slug(name or origin.source)}-{digest[:6]}"
    if any(v.id == variant_id for v in store.list_variants()):
        return variant_id     # the same files, name, data and label map are already in the store
    loaded = _load(origin, adapter, what)
    labels = [str(loaded["model"].config.id2label[i]) for i in range(loaded["model"].config.num_labels)]
    labels, data_cfg = match_labels(labels, data, label_map)
    record = _record(variant_id, name or lineage.get("name") or _default_name(origin), task, origin, loaded,
                     labels, data_cfg, lineage, digest[:16])
    _save(store, record, loaded, labels)
    return variant_id


def _load(origin: Origin, adapter: Path | None, what: str) -> dict[str, Any]:
    """The model and tokenizer: an evalhub push of an adapter (``merged/`` beside it), an adapter alone
    (applied onto its base), or full weights."""
    full_weights = (origin.folder / "config.json").is_file() and any(
        p.name != "adapter_model.safetensors" for p in origin.folder.glob("*.safetensors"))
    merged = origin.folder / "merged"
    if adapter is not None and (merged / "config.json").is_file():
        return load_pushed_adapter(adapter, merged, origin, what)
    if adapter is not None and (adapter == origin.folder or not full_weights):
        return load_adapter(adapter, origin, what)
    return load_full(origin.folder, what)


def _check_task(task: str) -> None:
    from hub.registries import TASKS

    spec = TASKS.get(task)   # an unknown name: did you mean / available
    if not spec.pullable:
        pullable = [name for name in TASKS.names() if TASKS.get(name).pullable]
        raise UserError(f"pull brings in {', '.join(pullable)} models; task {quote(task)} is not supported yet")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower().rstrip("/").rsplit("/", 1)[-1]).strip("-")[:24] or "pulled"


def _default_name(origin: Origin) -> str:
    return _slug(origin.repo_id or Path(origin.source).name)


# -- loading -------------------------------------------------------------------------------------
def _classifier(folder: Path, what: str, **kwargs: Any) -> Any:
    """AutoModelForSequenceClassification from safetensors only, without remote code."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    if not any(folder.glob("*.safetensors")):
        raise UserError(f"{what} has no safetensors weights (evalhub never loads pickled .bin/.pt weights)")
    from hub.plugins import register_model_type

    register_model_type(folder)   # an architecture a plugin defines (a pruned BERT pushed by evalhub)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            folder, use_safetensors=True, trust_remote_code=False, output_loading_info=True, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise UserError(f"{what}: cannot load it as a sequence classifier ({first_line(exc, 160)})") from None
    finally:
        hf_logging.set_verbosity(verbosity)


def _tokenizer(folder: Path, what: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{what}: cannot load its tokenizer ({first_line(exc, 160)})") from None


def load_full(folder: Path, what: str, tokenizer_in: Path | None = None) -> dict[str, Any]:
    """A full (or merged) sequence classifier: its config must say so, and every weight must load."""
    config = read_json(folder / "config.json", what)
    archs = config.get("architectures") or []
    if not any(str(a).endswith("ForSequenceClassification") for a in archs):
        raise UserError(f"{what} is not a sequence classifier (architectures: {quote_list(archs, 3) or 'none'}); "
                        "task text-classification needs a *ForSequenceClassification model")
    model, info = _classifier(folder, what)
    if info.get("missing_keys"):
        raise UserError(f"{what}: its weights lack {quote_list(info['missing_keys'], 3, 60)}; the file is "
                        "incomplete or of another architecture")
    return {"model": model.eval(), "tokenizer": _tokenizer(tokenizer_folder(tokenizer_in, folder), what),
            "peft_method": "none", "peft_config": {}, "base": None}


def load_pushed_adapter(adapter: Path, merged: Path, origin: Origin, what: str) -> dict[str, Any]:
    """An adapter pushed by evalhub with its merged copy (``merged/``): the merged weights are the model
    (its base may be a local folder of the pusher, named by its name alone), the adapter is kept beside."""
    config = read_json(adapter / "adapter_config.json", what)
    loaded = load_full(merged, what, tokenizer_in=origin.folder)
    return {**loaded, "peft_method": str(config.get("peft_type", "lora")).lower(), "adapter_files": adapter,
            "peft_config": _plain(config), "pushed_base": config.get("base_model_name_or_path")}


def _plain(config: dict) -> dict:
    return {k: (sorted(v) if isinstance(v, set) else v) for k, v in config.items()}


def _resolve_base(ref: str, what: str) -> tuple[Path, dict]:
    """The base model an adapter names: the embedded alias, a local folder or a Hub id (pulled alike)."""
    from hub.models import ALIASES, embedded_model_path

    if ref in ALIASES:
        return embedded_model_path(ref), {"source": ref}
    if Path(ref).expanduser().is_dir():
        return Path(ref).expanduser().resolve(), {"source": str(Path(ref).expanduser().resolve())}
    try:
        base = fetch(ref, None)
    except UserError as exc:
        raise UserError(f"{what}: its base model {quote(ref)} cannot be found ({str(exc)})") from None
    return base.folder, base.lineage()


def _head_size(adapter: Path) -> int | None:
    """Number of labels of the classification head an adapter carries (peft's modules_to_save), if any."""
    from safetensors import safe_open

    for path in adapter.glob("*.safetensors"):
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():
                if key.endswith(HEAD_KEYS) and len(fh.get_slice(key).get_shape()) == 2:
                    return fh.get_slice(key).get_shape()[0]
    return None


def _adapter_labels(adapter: Path, root: Path, base: Path, what: str) -> list[str]:
    """The labels of an adapter's classifier: a config.json beside it, else the base's, else LABEL_i."""
    size = _head_size(adapter)
    for folder in dict.fromkeys((adapter, root, base)):
        if (folder / "config.json").is_file():
            id2label = read_json(folder / "config.json", what).get("id2label") or {}
            if id2label and (size is None or len(id2label) == size):
                return [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(len(id2label))]
    if size is None:
        raise UserError(f"{what}: the adapter carries no classification head and its base is no classifier")
    return [f"LABEL_{i}" for i in range(size)]


def load_adapter(adapter: Path, origin: Origin, what: str) -> dict[str, Any]:
    """The adapter applied with ``PeftModel.from_pretrained`` onto its base classifier."""
    from peft import PeftModel

    config = read_json(adapter / "adapter_config.json", what)
    ref = config.get("base_model_name_or_path")
    if not ref:
        raise UserError(f"{what}: adapter_config.json names no base_model_name_or_path")
    base_folder, base_lineage = _resolve_base(str(ref), what)
    refuse_custom_code(base_folder, f"{what}'s base model {quote(ref)}")
    labels = _adapter_labels(adapter, origin.folder, base_folder, what)
    id2label = dict(enumerate(labels))
    base, _ = _classifier(base_folder, f"{what}'s base model {quote(ref)}", num_labels=len(labels), id2label=id2label,
                          label2id={v: k for k, v in id2label.items()}, ignore_mismatched_sizes=True)
    try:
        model = PeftModel.from_pretrained(base, adapter)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise UserError(f"{what}: the adapter does not fit its base {quote(ref)} ({first_line(exc, 160)})") from None
    return {"model": model.eval(), "tokenizer": _tokenizer(tokenizer_folder(adapter, origin.folder, base_folder), what),
            "peft_method": str(config.get("peft_type", "lora")).lower(), "base": base_folder,
            "peft_config": _plain(config),
            "base_ref": str(ref), "base_lineage": base_lineage}


# -- labels and data -----------------------------------------------------------------------------
def _set_text(values: list[str]) -> str:
    return "{" + ", ".join(values) + "}"


def match_labels(labels: list[str], data: str | None, label_map: dict[str, str]) -> tuple[list[str], dict | None]:
    """(the labels in the model's order after ``label_map``, the data config to score on or None)."""
    unknown = sorted(set(label_map) - set(labels))
    if unknown:
        raise UserError(f"--label-map {quote(unknown[0])}: the model has no such label; its labels are "
                        f"{_set_text(labels)}")
    mapped = [label_map.get(label, label) for label in labels]
    twice = sorted({label for label in mapped if mapped.count(label) > 1})
    if twice:
        raise UserError(f"--label-map gives two of the model's labels the name {quote(twice[0])}")
    if data is None:
        return mapped, None
    from hub.config import to_dict
    from hub.data import load_data
    from hub.embedded_data import embedded_datasets
    from hub.run_config import DataConfig

    path = Path(data).expanduser()
    source = str(path.resolve()) if data not in embedded_datasets() and path.exists() else data
    cfg = DataConfig(source=source)
    data_labels = load_data(cfg).labels
    if set(mapped) != set(data_labels):
        shown = data if data in embedded_datasets() else path.name
        extra = [label for label in mapped if label not in data_labels]
        missing = [label for label in data_labels if label not in mapped]
        inverse = {v: k for k, v in zip(labels, mapped)}
        hint = " ".join(f"--label-map {inverse[m]}={d}" for m, d in zip(extra, missing))
        raise UserError(f"the model's labels {_set_text(mapped)} do not match {shown}'s labels "
                        f"{_set_text(sorted(data_labels))}; "
                        + (f"pass {hint}" if hint and len(extra) == len(missing) else
                           f"the model has {len(mapped)} labels and the data {len(data_labels)}: score it on data "
                           "with the model's labels"))
    return mapped, to_dict(cfg)


# -- lineage -------------------------------------------------------------------------------------
def read_lineage(folder: Path) -> dict[str, Any]:
    """What a repo says about itself: evalhub's lineage file when an evalhub push wrote one, else the
    model card's YAML (base_model, datasets); {} when there is neither."""
    from hub.card import LOCAL, is_local

    path = folder / "evalhub.json"
    if path.is_file():
        record = read_json(path, "evalhub.json").get("variant")
        if not isinstance(record, dict):
            return {}
        out = {k: record[k] for k in LINEAGE_KEYS if record.get(k) not in (None, LOCAL)}
        source = (record.get("dataset") or {}).get("source") if isinstance(record.get("dataset"), dict) else None
        model = (record.get("run_config") or {}).get("model") or {}
        if isinstance(model, dict) and isinstance(model.get("max_length"), int):
            out["max_length"] = model["max_length"]   # scored as it was: the same truncation
        return {**out, **({"dataset": source} if source and source != LOCAL else {}), "from": "evalhub.json"}
    readme = folder / "README.md"
    if not readme.is_file():
        return {}
    from huggingface_hub import ModelCard

    try:
        card = ModelCard.load(readme).data.to_dict()
    except Exception:   # a card with broken YAML is only a card: the model still loads
        return {}
    base = card.get("base_model")
    base = base[0] if isinstance(base, list) and base else base
    out = {"base_model": None if is_local(str(base)) else base, "datasets": card.get("datasets")}
    return {**{k: v for k, v in out.items() if v}, "from": "README.md"}


def _record(variant_id: str, name: str, task: str, origin: Origin, loaded: dict, labels: list[str],
            data_cfg: dict | None, lineage: dict, pull_hash: str) -> Any:
    from hub.store import VariantRecord
    from hub.versions import package_versions

    model = loaded["model"]
    tokenizer = loaded["tokenizer"]
    limit = lineage.get("max_length") or min(128, int(getattr(tokenizer, "model_max_length", 128) or 128),
                                             int(getattr(model.config, "max_position_embeddings", 128) or 128))
    base_ref = loaded.get("base_ref")
    model_name = str(loaded["base"]) if loaded["base"] is not None else origin.source
    run_config = {"task": task, "model": {"name": model_name, "revision": None if loaded["base"] else origin.commit,
                                          "max_length": limit, "trust_remote_code": False},
                  "eval": {"split": "test"}}
    dataset: dict[str, Any] = {"pulled_without_data": True}
    if data_cfg is not None:
        run_config["data"] = data_cfg
        dataset = {"source": data_cfg["source"], "text_column": data_cfg["text_column"],
                   "label_column": data_cfg["label_column"]}
    external = {**origin.lineage(), "lineage": lineage}
    if loaded.get("base_lineage"):
        external["base"] = loaded["base_lineage"]
    return VariantRecord(
        id=variant_id, name=name, task=task,
        base_model=str(base_ref or lineage.get("base_model") or loaded.get("pushed_base") or origin.source),
        peft_method=loaded["peft_method"],
        labels=labels, dataset=dataset, peft_config=loaded["peft_config"], hyperparameters={},
        run_config=run_config, config_hash=str(lineage.get("config_hash") or pull_hash),
        seed=int(lineage.get("seed", 0) or 0), versions=package_versions(), kind="external",
        has_merged=True, has_adapter=loaded["base"] is not None or loaded.get("adapter_files") is not None,
        train_summary={"external": external})


def _save(store: Any, record: Any, loaded: dict, labels: list[str]) -> None:
    """Write the variant's folder through the store's staging, then its row."""
    import hub.peft_methods  # noqa: F401  (registers the PEFT methods)
    from hub.fsutil import write_json_atomic
    from hub.registries import PEFT_METHODS

    model = loaded["model"]
    id2label = dict(enumerate(labels))
    with store.stage_variant(record.id) as tmp:
        loaded["tokenizer"].save_pretrained(tmp / "tokenizer")
        if loaded.get("adapter_files") is not None:   # the pushed adapter as it came, beside its merged model
            (tmp / "adapter").mkdir()
            for name in ("adapter_config.json", "adapter_model.safetensors"):
                shutil.copyfile(loaded["adapter_files"] / name, tmp / "adapter" / name)
        elif record.has_adapter:
            model.save_pretrained(tmp / "adapter")
            method = record.peft_method
            record.has_merged = method in PEFT_METHODS.names() and PEFT_METHODS.get(method).mergeable
            if record.has_merged:
                model = model.merge_and_unload()
        if record.has_merged:
            model.config.id2label, model.config.label2id = id2label, {v: k for k, v in id2label.items()}
            model.save_pretrained(tmp / "model")
        write_json_atomic(tmp / "variant.json", asdict(record))
    store.add_variant(record)
