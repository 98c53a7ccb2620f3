"""``evalhub export-space``: a self-contained Hugging Face Space folder of chosen variants.

The folder holds ``app.py`` (a few lines: the UI of ``hub/ui`` over the snapshot beside it),
``README.md`` (Space front matter written with huggingface_hub's ``SpaceCardData``),
``requirements.txt`` (evalhub's runtime dependencies and the chosen engines' runtimes, pinned
to the versions installed here), ``store/`` (a snapshot of the chosen variants, their chosen
engines and their results, written through the :class:`~hub.store.Store` API) and a copy of
the ``hub``, ``tasks`` and ``evaluators`` packages.

Why copied packages and not a wheel of evalhub: evalhub is not on PyPI, and a Space installs
``requirements.txt`` in a build step that sees that one file, not the rest of the repository,
so a ``./wheels/evalhub-*.whl`` line cannot be resolved there. ``python app.py`` puts the
app's own folder first on ``sys.path``, so packages copied beside it import with no install
step, on a Space and in a fresh virtual environment alike. Only source and data files are
copied (``.py .yaml .json .jsonl .txt .md``), never ``__pycache__``.

The snapshot holds no training work folders or checkpoints: each variant's folder without
its ``engines/``, then only the chosen engines' folders. Runs of engines left out are left
out too (their rows would describe something the Space cannot serve); runs of the variant's
own torch model stay. The database is switched out of WAL mode at the end, so ``results.db``
is one file that reads on a read-only checkout.

Everything is written into a hidden sibling of ``OUT_DIR`` and renamed into place at the end:
a failure leaves nothing half-written, and bad input (a non-empty ``OUT_DIR``, an unknown
variant, an engine that is not the variant's) is one :class:`~hub.errors.UserError` before
anything is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import shutil
import sqlite3
import tempfile
from collections import namedtuple
from importlib import metadata
from pathlib import Path
from typing import Any

from hub.errors import UserError, clean, quote
from hub.store import RunRecord, Store, VariantRecord

KINDS = ("hub", "leaderboard", "demo")
KIND_TABS = {"leaderboard": ["leaderboard"], "demo": ["demo"]}   # hub: the app's default tabs
PACKAGES = ("hub", "tasks", "evaluators")
COPIED_SUFFIXES = frozenset({".py", ".yaml", ".json", ".jsonl", ".txt", ".md"})
TORCH_MODEL = "torch"          # --engine torch: the variant's own torch model, no engine (as in the app)
ALIAS_HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}   # hub.models.ALIASES on the Hub
SDK_PACKAGE = "gradio"         # a Space installs it from ``sdk_version``; requirements.txt leaves it out
SHORT_DESCRIPTION_MAX = 60     # the Hub refuses a longer ``short_description``

_Metric = namedtuple("_Metric", "name value ci_low ci_high higher_is_better")   # what Store.add_run reads

APP_TEMPLATE = '''"""{title}: a Hugging Face Space exported by `evalhub export-space` ({kind}).

The UI lives in hub/ui/app.py (copied beside this file); the store is the read-only snapshot
in store/, found from this file's own folder so the app runs from any working folder.
"""

from pathlib import Path

from hub.store import Store
from hub.ui.app import build_app
from hub.ui.app_config import AppConfig

STORE = Path(__file__).resolve().parent / "store"
demo = build_app(Store(STORE, db=f"sqlite:///{{STORE / 'results.db'}}"), config=AppConfig(title={title!r}, tabs={tabs!r}))

if __name__ == "__main__":
    demo.launch()   # a Space runs `python app.py`; GRADIO_SERVER_NAME / GRADIO_SERVER_PORT say where
'''

KIND_TEXT = {
    "hub": "the leaderboard of the variants below, a demo that classifies your own text with each of them, "
           "and the examples behind their robustness, fairness and explanation scores",
    "leaderboard": "the leaderboard of the variants below: every engine and split on one scorecard",
    "demo": "a demo that classifies your own text with the variants below and shows every label's probability",
}


def export_space(store: Store, out_dir: str | Path, *, kind: str = "hub", variants: list[str] | None = None,
                 engine: str | None = None) -> dict[str, Any]:
    """Write the Space folder ``out_dir`` of ``variants`` (ids, id prefixes or names; default: all).

    ``engine`` is looked up among each chosen variant's own engines, as ``evalhub eval --engine``
    does: an id, a backend name (its latest), or ``best``; ``torch`` ships no engine (the torch
    model serves). Left out, each variant ships its best engine that passed parity, if any. With
    several variants, an engine id fits one of them only, so give a backend name. Returns what was
    made: folder, kind, variants, engines (variant id -> engine ids), tabs, files."""
    out = Path(out_dir)
    _check_out_dir(out)
    tabs = tabs_for(kind)
    chosen = choose(store, variants or [], engine)
    title = "evalhub" if kind == "hub" else f"evalhub {kind}"
    all_engines = [e for _, engines in chosen for e in engines]
    made_parents = [p for p in (out.parent, *out.parent.parents) if not p.exists()]   # deepest first
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.export-"))
    except OSError as exc:
        _remove_empty(made_parents)
        raise UserError(f"cannot write next to {clean(out, 200)} ({clean(exc, 80)})") from None
    try:
        write_snapshot(store, chosen, tmp / "store")
        copy_packages(tmp)
        (tmp / "app.py").write_text(APP_TEMPLATE.format(title=title, kind=kind, tabs=tabs), encoding="utf-8")
        write_readme(tmp / "README.md", kind, title, chosen)
        (tmp / "requirements.txt").write_text("\n".join(requirements(all_engines)) + "\n", encoding="utf-8")
        os.replace(tmp, out)   # an empty OUT_DIR is replaced in the same step
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(made_parents)
        raise
    return {"folder": str(out), "kind": kind, "variants": [r.id for r, _ in chosen],
            "engines": {r.id: [e.id for e in engines] for r, engines in chosen}, "tabs": tabs,
            "files": ["app.py", "README.md", "requirements.txt", "store/", *(f"{p}/" for p in PACKAGES)]}


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this export made on the way to OUT_DIR (deepest first), if still empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{clean(out, 200)} is a file; give export-space a new or empty folder")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"{clean(out, 200)} is not empty; give export-space a new or empty folder "
                        "(nothing was written)")


def tabs_for(kind: str) -> list[str]:
    """The app's tabs for a Space of ``kind``: hub: the app's default tabs whose modules ship."""
    from hub.ui.app import TAB_BUILDERS
    from hub.ui.app_config import DEFAULT_TABS

    if kind not in KINDS:
        raise UserError(f"unknown Space kind {quote(kind)}; available: {', '.join(KINDS)}")
    if kind in KIND_TABS:
        return list(KIND_TABS[kind])
    return [tab for tab in DEFAULT_TABS   # a Space has no workers: no Submit tab
            if tab != "submit" and importlib.util.find_spec(TAB_BUILDERS[tab][1]) is not None]


def choose(store: Store, refs: list[str], engine: str | None) -> list[tuple[VariantRecord, list[Any]]]:
    """(variant, engines to ship) for each chosen variant; UserError for an unknown variant, an
    engine that is not the variant's, or a variant or engine whose folder is missing."""
    records = [store.get_variant(ref) for ref in refs] if refs else store.list_variants()
    records = list({r.id: r for r in records}.values())   # a variant named twice ships once
    if not records:
        raise UserError(f"the store {clean(store.root, 200)} has no variants to export; train or pull one first")
    chosen = []
    for record in records:
        store.variant_folder(record)
        engines = _engines_for(store, record, engine)
        for found in engines:
            if not store.engine_path(record.id, found.id).is_dir():
                raise UserError(f"engine {found.id} of {record.id}: its folder is missing from the store; rebuild "
                                f"it, or pass --engine torch to ship the torch model only")
        chosen.append((record, engines))
    return chosen


def _engines_for(store: Store, record: VariantRecord, engine: str | None) -> list[Any]:
    if engine is None:
        best = store.best_engine(record.id)
        return [best] if best is not None else []
    if engine == TORCH_MODEL:
        return []
    return [store.get_engine(engine, variant_id=record.id)]   # another variant's engine: "no engine ..."


def write_snapshot(store: Store, chosen: list[tuple[VariantRecord, list[Any]]], root: Path) -> Store:
    """A new store at ``root`` with the chosen variants, engines and their runs, and no others."""
    snap = Store(root, db=f"sqlite:///{root / 'results.db'}")   # a Space carries its results in one file
    for record, engines in chosen:
        source = store.variant_folder(record)
        shutil.copytree(source, snap.variant_path(record.id),
                        ignore=lambda folder, names: {"engines"} if Path(folder) == source else set())
        snap.add_variant(record)
        for found in engines:
            shutil.copytree(store.engine_path(record.id, found.id), snap.engine_path(record.id, found.id))
            snap.add_engine(found)
        built = {e.id for e in store.list_engines(record.id)}
        kept = {e.id for e in engines}
        for run in store.runs(record.id):
            if run["engine"] not in built or run["engine"] in kept:
                copy_run(store, snap, run)
    _settle_database(snap.db_path)
    return snap


def copy_run(store: Store, snap: Store, run: dict) -> None:
    """Copy one run with its metrics, predictions and evaluator records, as one transaction."""
    fields = {f.name for f in dataclasses.fields(RunRecord)}
    values = {k: v for k, v in run.items() if k in fields}
    if isinstance(values.get("versions"), str):
        values["versions"] = json.loads(values["versions"])
    metrics = [_Metric(m["metric"], m["value"], m["ci_low"], m["ci_high"], bool(m["higher_is_better"]))
               for m in store.metrics(run["id"])]
    records: dict[str, list[dict]] = {}
    for row in store.records(run["id"]):
        evaluator = row.pop("evaluator")
        records.setdefault(evaluator, []).append(row)
    snap.add_run(RunRecord(**values), metrics, store.predictions(run["id"]), records)


def _settle_database(db_path: Path) -> None:
    """Fold the WAL into the file and leave WAL mode: one ``results.db``, readable read-only."""
    if not db_path.exists():
        return
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def source_root() -> Path:
    """The folder holding the ``hub``, ``tasks`` and ``evaluators`` packages this evalhub runs from."""
    import hub

    return Path(hub.__file__).resolve().parent.parent


def copy_packages(dest: Path) -> list[Path]:
    """Copy the three packages' source and data files into ``dest``; returns the files copied."""
    root = source_root()
    copied = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            parts = path.relative_to(root).parts
            if (not path.is_file() or path.suffix not in COPIED_SUFFIXES or "__pycache__" in parts
                    or any(part.startswith(".") for part in parts)):
                continue
            target = dest / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            copied.append(target)
    return copied


def runtime_requirements() -> list[Any]:
    """evalhub's runtime dependencies (``project.dependencies`` of its pyproject.toml, else the
    installed distribution's metadata), those whose environment markers hold here."""
    from packaging.requirements import Requirement

    pyproject = source_root() / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        lines = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    else:
        lines = metadata.requires("evalhub") or []
    reqs = [Requirement(line) for line in lines]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def engine_packages(engines: list[Any]) -> list[str]:
    """The distributions that load the chosen engines (their backends' runtime package)."""
    from hub.registries import ENGINES

    provides = metadata.packages_distributions()
    names = []
    for backend in sorted({e.backend for e in engines}):
        package = ENGINES.get(backend)().package
        names += provides.get(package, [package]) if package else []
    return names


def pin(name: str, declared: str | None = None) -> str:
    """``name==<installed version>`` (its public part: a local ``+cpu`` build pins the same release);
    the requirement as declared when the package is not installed here."""
    from packaging.version import Version

    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        return declared or name
    return f"{name}=={Version(version).public}"


def requirements(engines: list[Any]) -> list[str]:
    """The lines of the Space's requirements.txt."""
    from packaging.utils import canonicalize_name

    lines = [f"# pinned to the versions that exported this Space; {SDK_PACKAGE} comes from README.md's "
             "sdk_version", "# evalhub itself travels as the hub, tasks and evaluators folders beside app.py"]
    seen = {canonicalize_name(SDK_PACKAGE)}
    for req in runtime_requirements():
        if canonicalize_name(req.name) not in seen:
            seen.add(canonicalize_name(req.name))
            lines.append(pin(req.name, str(req)))
    for name in engine_packages(engines):
        if canonicalize_name(name) not in seen:
            seen.add(canonicalize_name(name))
            lines.append(pin(name))
    return lines


def hub_model_ids(records: list[VariantRecord]) -> list[str]:
    """The variants' base models that are Hub ids (an alias as its Hub id; local folders left out)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    ids = []
    for record in records:
        name = ALIAS_HUB_IDS.get(record.base_model, record.base_model)
        if name.startswith((".", "/", "~")) or Path(name).expanduser().exists():
            continue
        try:
            validate_repo_id(name)
        except HFValidationError:
            continue
        if name not in ids:
            ids.append(name)
    return ids


def short_description(kind: str, records: list[VariantRecord]) -> str:
    n = len(records)
    text = {"hub": f"Scorecards and demos of {n} evalhub variant{'s' * (n != 1)}",
            "leaderboard": f"Leaderboard of {n} evalhub variant{'s' * (n != 1)}",
            "demo": f"Demo of {', '.join(r.name for r in records)}"}[kind]
    return text if len(text) <= SHORT_DESCRIPTION_MAX else text[:SHORT_DESCRIPTION_MAX - 1] + "…"


def write_readme(path: Path, kind: str, title: str, chosen: list[tuple[VariantRecord, list[Any]]]) -> None:
    """README.md: Space front matter (huggingface_hub's SpaceCardData) and what the Space shows."""
    from huggingface_hub import SpaceCard, SpaceCardData

    records = [record for record, _ in chosen]
    tasks = sorted({r.task for r in records})
    data = SpaceCardData(title=title, sdk="gradio", sdk_version=metadata.version(SDK_PACKAGE), app_file="app.py",
                         models=hub_model_ids(records) or None, tags=["evalhub", kind, *tasks],
                         short_description=short_description(kind, records), emoji="📊", colorFrom="indigo",
                         colorTo="green", pinned=False)
    rows = ["| variant | id | task | base model | PEFT | served by |", "|---|---|---|---|---|---|"]
    for record, engines in chosen:
        served = ", ".join(e.id for e in engines) or "its torch model"
        base = ALIAS_HUB_IDS.get(record.base_model, record.base_model)
        base = base if base in (data.models or []) else "a local model"
        rows.append(f"| {record.name} | `{record.id}` | {record.task} | {base} | {record.peft_method} | {served} |")
    body = (f"# {title}\n\nThis Space shows {KIND_TEXT[kind]}.\n\n" + "\n".join(rows) +
            "\n\nThe results are a read-only snapshot in `store/`, exported with `evalhub export-space`; "
            "the app is evalhub's own (`hub/ui/`), copied beside `app.py`.\n")
    SpaceCard(f"---\n{data.to_yaml()}\n---\n\n{body}").save(path)
