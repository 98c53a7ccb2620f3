"""What a team shows in its app: title, description, logo, tabs, the variants on show.

``AppConfig`` is read from ``--app-config FILE`` (the whole file, or its ``app:`` section, so
one ``hub.yaml`` can hold it beside other sections), checked like a run config (unknown keys
and wrong types are one :class:`~hub.errors.UserError` naming the key and the closest valid
one). ``StoreView`` is the store as the app sees it: with an allow-list of variants, hidden
variants, their engines, runs and results are not there at all, so no tab and no API
endpoint can name one (a hidden id reads as an unknown one).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.config import from_dict, load_yaml_text, opt
from hub.errors import UserError, clean, did_you_mean, quote

TABS = ("leaderboard", "demo", "compare", "inspect", "card", "submit")
DEFAULT_TABS = ("leaderboard", "demo", "compare", "inspect", "card", "submit")
DEFAULT_DESCRIPTION = "Every variant scored on one scorecard, and a demo of each."


@dataclass
class AppConfig:
    title: str = opt("evalhub", "the page title and heading")
    description: str = opt(DEFAULT_DESCRIPTION, "Markdown under the title")
    logo: str | None = opt(None, "an image file shown beside the title (a path, relative to the config file)")
    tabs: list[str] = opt(list(DEFAULT_TABS), f"which tabs show, in this order; any of {', '.join(TABS)}")
    variants: list[str] | None = opt(None, "an allow-list of variant ids or names to show (default: all); "
                                           "the others are hidden from every tab and endpoint")
    default_variant: str | None = opt(None, "the variant the Demo tab starts on (default: the leaderboard's best)")
    max_text_chars: int = opt(10_000, "the longest text the demo takes, in characters")
    concurrency_limit: int = opt(4, "events of one kind running at once (gradio's default_concurrency_limit)")
    max_batch_size: int = opt(16, "concurrent predict requests answered by one forward pass, at most")
    login_message: str | None = opt(None, "text on the login page when the app asks for a password")
    db: str | None = opt(None, "the results database's SQLAlchemy URL (sqlite:///PATH or postgresql+psycopg://...); "
                               "--db wins over it, it wins over EVALHUB_DB; default: the store's results.db")

    def __post_init__(self) -> None:
        for tab in self.tabs:
            if tab not in TABS:
                raise ValueError(f"tabs: unknown tab {quote(tab)}{did_you_mean(str(tab), TABS)}; "
                                 f"available: {', '.join(TABS)}")
        if not self.tabs:
            raise ValueError(f"tabs: give at least one of {', '.join(TABS)}")
        if len(set(self.tabs)) != len(self.tabs):
            raise ValueError("tabs: a tab is listed twice")
        for name in ("max_text_chars", "concurrency_limit", "max_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.variants is not None and not self.variants:
            raise ValueError("variants: an empty allow-list would show nothing; leave it out to show all")


def load_app_config(path: str | Path) -> AppConfig:
    """The app config in ``path`` (its ``app:`` section when it has one); UserError on bad input."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"app config {clean(path, 200)} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"app config {clean(path, 200)} cannot be read ({clean(exc, 80)})") from None
    data = load_yaml_text(text, str(path)) or {}
    if isinstance(data, dict) and isinstance(data.get("app"), dict):
        data = data["app"]
    config = from_dict(AppConfig, data, f"{clean(path, 200)}")
    if config.logo:
        logo = (path.parent / config.logo).resolve()
        if not logo.is_file():
            raise UserError(f"{clean(path, 200)}: logo {quote(config.logo)} is not a file (paths are relative "
                            "to the config file)")
        config = dataclasses.replace(config, logo=str(logo))
    return config


class StoreView:
    """The store through an allow-list of variants: read calls only, hidden variants absent.

    With no allow-list it is the store itself (:func:`view_of` returns the store); names in the
    list that match no variant are ignored, so a config can name variants trained later."""

    def __init__(self, store: Any, allowed: list[str]) -> None:
        self._store = store
        self._allowed = set(allowed)

    def __getattr__(self, name: str) -> Any:
        if name in {"root", "db", "db_path", "stamp", "variant_path", "engine_path", "variant_folder", "read"}:
            return getattr(self._store, name)
        raise AttributeError(f"the app's store view has no {name!r} (it is read-only)")

    def _shown(self, variant_id: str) -> bool:
        return any(v.id == variant_id for v in self.list_variants())

    def list_variants(self) -> list[Any]:
        return [v for v in self._store.list_variants() if v.id in self._allowed or v.name in self._allowed]

    def get_variant(self, ref: str) -> Any:
        from hub.store import match_variants

        variants = self.list_variants()
        matches = match_variants(variants, ref)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UserError(f"variant {quote(ref)} is ambiguous; give more of the id")
        raise UserError(f"no variant {quote(ref)}{did_you_mean(ref, [v.id for v in variants])}")

    def list_engines(self, variant_id: str | None = None) -> list[Any]:
        ids = {v.id for v in self.list_variants()}
        if variant_id is not None and variant_id not in ids:
            return []
        return [e for e in self._store.list_engines(variant_id) if e.variant_id in ids]

    def best_engine(self, variant_id: str) -> Any | None:
        return self._store.best_engine(variant_id) if self._shown(variant_id) else None

    def get_engine(self, ref: str, variant_id: str | None = None) -> Any:
        if variant_id is not None and not self._shown(variant_id):
            raise UserError(f"no variant {quote(variant_id)}")
        engine = self._store.get_engine(ref, variant_id)
        if not self._shown(engine.variant_id):
            raise UserError(f"no engine {quote(ref)}")
        return engine

    def runs(self, variant_id: str | None = None) -> list[dict]:
        ids = {v.id for v in self.list_variants()}
        return [r for r in self._store.runs(variant_id) if r["variant_id"] in ids]

    def _run_shown(self, run_id: str) -> bool:
        return any(r["id"] == run_id for r in self.runs())

    def metrics(self, run_id: str) -> list[dict]:
        return self._store.metrics(run_id) if self._run_shown(run_id) else []

    def predictions(self, run_id: str, limit: int | None = None) -> list[dict]:
        return self._store.predictions(run_id, limit) if self._run_shown(run_id) else []

    def records(self, run_id: str, evaluator: str | None = None) -> list[dict]:
        return self._store.records(run_id, evaluator) if self._run_shown(run_id) else []

    def leaderboard(self) -> list[dict]:
        ids = {v.id for v in self.list_variants()}
        return [row for row in self._store.leaderboard() if row["variant"] in ids]


def view_of(store: Any, config: AppConfig) -> Any:
    """The store as an app with ``config`` shows it."""
    return store if config.variants is None else StoreView(store, config.variants)
