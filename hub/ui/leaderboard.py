"""The Leaderboard tab: one row per variant x engine x split, with every metric.

The tab shows a view of the rows (``hub/ui/columns.py``): column groups picked by a checkbox
group, facet filters, a search box, a legend of the shown columns, and CSV/JSON downloads.
``leaderboard_frame`` is the whole table the ``leaderboard`` API endpoint returns: column order
follows ``hub.report.leaderboard_columns`` (the CLI's table), with the variant's name, the
accuracy confidence interval (as text) and the dataset added.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from hub.report import leaderboard_columns
from hub.ui import columns

HEADER = """\
## Leaderboard
One row per variant × engine × split: the scores of the model as it is served.
Pick column groups and filters below; the legend under the table says what each shown column
measures and which direction is better (↑ higher, ↓ lower). Sort from a column's header.
The downloads give the rows as shown: CSV of the table, JSON with every field of those rows.
"""

EMPTY = """\
**No results yet.** Run `evalhub demo` to fine-tune and evaluate the default model
(or `evalhub train CONFIG.yaml` then `evalhub eval VARIANT`), then press **Refresh**.
"""


def table_columns(rows: list[dict]) -> list[str]:
    """The report's column order, plus name after variant, CI after accuracy, dataset last."""
    names = leaderboard_columns(rows)
    names.insert(names.index("variant") + 1, "name")
    names.append("dataset")
    if any("accuracy_ci" in r for r in rows) and "accuracy" in names:
        names.insert(names.index("accuracy") + 1, "accuracy_ci")
    return names


def _cell(row: dict, column: str) -> Any:
    value = row.get(column)
    if column == "accuracy_ci":
        return f"[{value[0]:.3f}, {value[1]:.3f}]" if value else ""  # as in `evalhub leaderboard`
    if isinstance(value, float):
        return round(value, 4)
    return value


def leaderboard_frame(store: Any) -> pd.DataFrame:
    """The store's leaderboard as a table; floats rounded to 4 places, missing cells empty."""
    rows = store.leaderboard()
    names = table_columns(rows)
    data = [[_cell(row, c) for c in names] for row in rows]
    return pd.DataFrame(data, columns=names, dtype=object)


def empty_notice(store: Any) -> gr.Markdown:
    return gr.Markdown(visible=not store.leaderboard())



# -- the tab: column groups, filters, search, legend, downloads (pure parts in hub/ui/columns.py) --

def store_rows(store: Any) -> list[dict]:
    """The store's leaderboard rows with backend, precision, task and base model added."""
    variants = {v.id: {"task": v.task, "base_model": v.base_model} for v in store.list_variants()}
    return columns.enrich(store.leaderboard(), variants)


def _write(folder: Path, stem: str, suffix: str, text: str) -> str:
    """Write ``text`` atomically under a name from its content (so concurrent views never clash)."""
    path = folder / f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:12]}{suffix}"
    if not path.exists():
        tmp = path.with_suffix(f"{suffix}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return str(path)


def download_files(rows: list[dict], frame: pd.DataFrame, folder: Path) -> tuple[str | None, str | None]:
    """CSV of the table as shown, JSON of the shown rows whole (every field, intervals as lists)."""
    if frame.empty:
        return None, None
    csv_path = _write(folder, "leaderboard", ".csv", frame.to_csv(index=False))
    return csv_path, _write(folder, "leaderboard", ".json", json.dumps(rows, indent=2, default=str))


def _filters(values: tuple) -> dict[str, list[str]]:
    return {facet: list(v or []) for facet, v in zip(columns.FACETS, values)}


def show(rows: list[dict], groups: list[str], search: str, *facets: list[str], folder: Path) -> tuple:
    """The shown table, its legend and the two downloads, for the controls' current values."""
    filters = _filters(facets)
    frame = columns.view(rows, groups, filters, search)
    csv_path, json_path = download_files(columns.filter_rows(rows, filters, search), frame, folder)
    return (gr.Dataframe(value=frame, datatype=columns.datatypes(frame.columns)),
            columns.legend(frame.columns),
            gr.DownloadButton(value=csv_path, interactive=csv_path is not None),
            gr.DownloadButton(value=json_path, interactive=json_path is not None))


def _facet_dropdowns(rows: list[dict]) -> list[gr.Dropdown]:
    choices = columns.facet_choices(rows)
    with gr.Row():
        return [gr.Dropdown(choices=choices[facet], value=[], multiselect=True, label=label, scale=1,
                            min_width=120) for facet, label in columns.FACETS.items()]


def _controls(rows: list[dict]) -> dict[str, Any]:
    groups = gr.CheckboxGroup(choices=[(label, key) for key, label in columns.GROUPS.items()],
                              value=list(columns.DEFAULT_GROUPS), label="Column groups")
    facets = _facet_dropdowns(rows)
    search = gr.Textbox(label="Search", placeholder="words to find in any text cell (variant, name, engine, ...)",
                        max_lines=1)
    return {"groups": groups, "facets": facets, "search": search}


def reload_view(store: Any, folder: Path, groups: list[str], search: str, *facets: list[str]) -> tuple:
    """Re-read the store: the rows (for the state), the view, and each filter's new choices
    keeping the chosen values that still occur."""
    rows = store_rows(store)
    choices = columns.facet_choices(rows)
    kept = [[v for v in (chosen or []) if v in choices[f]] for f, chosen in zip(columns.FACETS, facets)]
    dropdowns = [gr.Dropdown(choices=choices[f], value=v, multiselect=True) for f, v in zip(columns.FACETS, kept)]
    return (rows, *show(rows, groups, search, *kept, folder=folder), *dropdowns)


def build_leaderboard_tab(ctx: Any) -> dict[str, Any]:
    """The tab's components and its own events. The app wires Refresh (it also updates other
    tabs): ``full_fn`` -> ``full``, the hidden whole table the ``leaderboard`` endpoint returns,
    then every tab's ``reload``; this tab's re-reads the store into the view."""
    store = ctx.store
    folder = Path(tempfile.mkdtemp(prefix="evalhub-leaderboard-"))   # downloads; never the store
    rows = store_rows(store)
    with gr.Row():
        gr.Markdown(HEADER)
        refresh = gr.Button("Refresh", variant="secondary", size="sm", scale=0, min_width=100)
    notice = gr.Markdown(EMPTY, visible=not rows)
    controls = _controls(rows)
    frame = columns.view(rows)
    table = gr.Dataframe(value=frame, datatype=columns.datatypes(frame.columns), label="Results",
                         interactive=False, max_height=600, wrap=False, buttons=["fullscreen", "copy"])
    csv_path, json_path = download_files(rows, frame, folder)
    with gr.Row():
        csv_button = gr.DownloadButton("Download CSV (as shown)", value=csv_path, size="sm",
                                       interactive=csv_path is not None)
        json_button = gr.DownloadButton("Download JSON (shown rows, every field)", value=json_path,
                                        size="sm", interactive=json_path is not None)
    with gr.Accordion("What the columns measure", open=True):
        legend = gr.Markdown(columns.legend(frame.columns))
    full = gr.Dataframe(value=leaderboard_frame(store), visible=False, interactive=False)
    state = gr.State(rows)
    inputs = [controls["groups"], controls["search"], *controls["facets"]]
    shown = [table, legend, csv_button, json_button]

    on_input = functools.partial(show, folder=folder)
    reload = functools.partial(reload_view, store, folder)
    for control in inputs:
        control.input(on_input, inputs=[state, *inputs], outputs=shown, api_visibility="private")
    return {"table": table, "full": full, "full_fn": lambda: leaderboard_frame(store), "notice": notice,
            "refresh": refresh, "state": state,
            "reload": [(reload, inputs, [state, *shown, *controls["facets"]]),
                       (lambda: empty_notice(store), None, notice)]}
