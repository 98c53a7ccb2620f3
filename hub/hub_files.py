"""What ``evalhub push`` puts in a Hub model repo: the files of one variant, laid out for the Hub.

:func:`repo_files` maps each path in the repo to its content (a file of the store, or bytes
made here), so that the push is one ``create_commit`` of ``CommitOperationAdd`` s and nothing
is copied on disk. The layout::

    README.md                   the model card (hub/card.py) and how to load the pushed engines
    .eval_results/evalhub.yaml  every stored metric in the Hub's evaluation-results format
    evalhub.json                {"variant": the variant's record (lineage)}, local paths scrubbed
    config.json, model.safetensors, tokenizer files        a full fine-tune, at the root
    adapter_config.json, adapter_model.safetensors, tokenizer files, merged/   a PEFT variant
    engines/<backend>-<precision>/   each pushed engine's folder (engine.json, parity.json,
                                latency.json, its model files and tokenizer/)

Why a PEFT variant's adapter is at the root and its merged weights in ``merged/``: the card
says ``library_name: peft`` and ``base_model_relation: adapter``, which is how the Hub shows an
adapter and what ``PeftModel.from_pretrained(base, repo)`` reads (it takes no subfolder in
the usage every PEFT user knows). transformers, with peft installed, also treats a repo whose
root holds ``adapter_config.json`` as an adapter, so full weights there would never be loaded
as such; they stay loadable with ``from_pretrained(repo, subfolder="merged")``. The tokenizer
is at the root either way, so ``AutoTokenizer.from_pretrained(repo)`` works.

A repo is public: JSON configs that name the local folder a model was loaded from
(``_name_or_path``, ``base_model_name_or_path``) name the base's Hub id, or the folder's name
alone, instead. Every other file goes up byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Any

import yaml
from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

from hub.card import base_model, build_card, data_name, is_local, scorecards, scrub
from hub.errors import UserError, quote

NAME_KEYS = ("_name_or_path", "name_or_path", "base_model_name_or_path")   # where a config names a local folder
EVAL_RESULTS = ".eval_results/evalhub.yaml"
RECORD = "evalhub.json"   # what `evalhub pull` reads back as the lineage

Content = Path | bytes


def engine_folder(engine: Any) -> str:
    """The folder of an engine in the repo: ``engines/<backend>-<precision>``."""
    return f"engines/{engine.label}"


def repo_files(store: Any, record: Any, engines: list[Any], *, weights: bool, repo_id: str) -> dict[str, Content]:
    """Path in the repo -> content, for one push of ``record`` with ``engines`` (README first)."""
    folders = [engine_folder(e) for e in engines]
    if len(set(folders)) < len(folders):
        raise UserError(f"two of the engines given ({', '.join(e.id for e in engines)}) share a backend and "
                        "precision, so they would share one folder in the repo; push one of them")
    files: dict[str, Content] = {"README.md": readme(store, record, engines, repo_id).encode(),
                                 EVAL_RESULTS: eval_results_yaml(store, record).encode(),
                                 RECORD: (json.dumps({"variant": scrub(asdict(record))}, indent=2, sort_keys=True)
                                          + "\n").encode()}
    public = public_base(record)
    if weights:
        files.update(model_files(store, record, public))
    for engine, folder in zip(engines, folders):
        path = store.engine_path(engine.variant_id, engine.id)
        if not path.is_dir():
            raise UserError(f"engine {engine.id}: its folder is missing from the store; rebuild it with "
                            f"`evalhub build-engine {record.id} --backend {engine.backend}`")
        files.update(tree(path, folder + "/", public))
    return files


def model_files(store: Any, record: Any, public: str) -> dict[str, Content]:
    """The weights and tokenizer, laid out as the module docstring says."""
    folder = store.variant_folder(record)
    if record.has_adapter and (folder / "adapter").is_dir():
        files = tree(folder / "adapter", "", public)
        if record.has_merged:
            files.update(tree(folder / "model", "merged/", public))
    else:
        files = tree(folder / "model", "", public)
    tokenizer = tree(folder / "tokenizer", "", public)
    clash = sorted(set(files) & set(tokenizer))
    if clash:    # no tokenizer saves a file named like a model's; a variant folder edited by hand might
        raise UserError(f"variant {record.id}: its tokenizer and model folders both hold {quote(clash[0])}")
    return {**files, **tokenizer}


def tree(folder: Path, prefix: str, public: str) -> dict[str, Content]:
    """Every file under ``folder`` as ``prefix + relative path`` (POSIX), sorted."""
    if not folder.is_dir():
        return {}
    return {prefix + path.relative_to(folder).as_posix(): public_json(path, public)
            for path in sorted(folder.rglob("*")) if path.is_file()}


def public_base(record: Any) -> str:
    """What a pushed config names as the model it came from: the base's Hub id, else its folder's name."""
    hub_id, _, _ = base_model(record)
    return hub_id or PurePath(str(record.base_model)).name


def public_json(path: Path, public: str) -> Content:
    """``path`` itself, or for a JSON config naming a local folder its text with that name replaced."""
    if path.suffix != ".json":
        return path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return path
    if not isinstance(data, dict):
        return path
    local = [key for key in NAME_KEYS if isinstance(data.get(key), str) and is_local(data[key])]
    if not local:
        return path
    data.update({key: public for key in local})
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


# -- the card and its evaluation results -------------------------------------------------------
def readme(store: Any, record: Any, engines: list[Any], repo_id: str) -> str:
    """The model card, with a section on loading each pushed engine from the repo."""
    text = build_card(store, record.id, repo_id=repo_id).text
    return text if not engines else text.rstrip("\n") + "\n\n" + engines_section(record, engines, repo_id) + "\n"


def engines_section(record: Any, engines: list[Any], repo_id: str) -> str:
    rows = "\n".join(f"- `{engine_folder(e)}/`: `{e.id}`, agreement with torch "
                     f"{(e.parity or {}).get('agreement', float('nan')):.4f}, parity "
                     f"{'passed' if (e.parity or {}).get('passed') else 'failed'} (`parity.json`, `latency.json`)"
                     for e in engines)
    folder = engine_folder(engines[0])
    code = (f"import json, pathlib\nfrom huggingface_hub import snapshot_download\nfrom transformers import "
            f"AutoTokenizer\nfrom hub.engines.base import EngineRecord\nfrom hub.engines.build import backend_for\n\n"
            f"root = pathlib.Path(snapshot_download(\"{repo_id}\", allow_patterns=\"{folder}/*\")) / \"{folder}\"\n"
            f"record = EngineRecord(**json.loads((root / \"engine.json\").read_text()))\n"
            f"predictor = backend_for(record.backend).load(root, record, AutoTokenizer.from_pretrained(root / "
            f"\"tokenizer\"),\n                                           {record.labels!r})\n"
            f"probs = predictor.predict_proba([\"a sentence to classify\"])")
    return (f"## Engines in this repository\n\n{rows}\n\nEach folder is the engine as evalhub built it; load one "
            f"with evalhub:\n\n```python\n{code}\n```")


def eval_entries(store: Any, record: Any) -> list[EvalResultEntry]:
    """One entry per latest stored metric of every (engine, split) row, as the model-index has them:
    ``task_id`` is the metric, ``notes`` say split, engine and the 95% interval."""
    entries = []
    for (engine, split), metrics in sorted(scorecards(store, record.id).items()):
        for name, m in sorted(metrics.items()):
            run = m["run"]
            notes = f"split={split}; engine={engine}"
            if m["ci_low"] is not None:
                notes += f"; ci95=[{m['ci_low']:.6g}, {m['ci_high']:.6g}]"
            date = datetime.fromtimestamp(run["created_at"], timezone.utc).isoformat(timespec="seconds")
            entries.append(EvalResultEntry(dataset_id=data_name(run["dataset"])[1], task_id=name,
                                           value=round(float(m["value"]), 6), date=date.replace("+00:00", "Z"),
                                           notes=notes))
    return entries


def eval_results_yaml(store: Any, record: Any) -> str:
    """``.eval_results/evalhub.yaml``: :func:`eval_entries` serialised by huggingface_hub."""
    return yaml.safe_dump(eval_result_entries_to_yaml(eval_entries(store, record)), sort_keys=False,
                          allow_unicode=True)
