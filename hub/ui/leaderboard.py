"""The Leaderboard tab: one row per variant x engine x split, with every metric.

The tab shows a view of the rows (``hub/ui/columns.py``): column groups picked by a checkbox
group, facet filters, a search box, a legend of the shown columns, and CSV/JSON downloads.
Under them a Pareto plot (``hub/ui/pareto.py``) of the rows the table shows: a quality metric
against p50 latency, throughput or size on disk, the frontier as its own series. A click on a
row opens its details (``hub/ui/row_details.py``): run config, lineage, engine reports, suite
settings and worst-scored examples; ``/row_details`` (variant, engine, split) returns them as JSON.
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

from hub.errors import UserError
from hub.report import leaderboard_columns
from hub.ui import columns, pareto, row_details

HEADER = """\
## Leaderboard
One row per variant × engine × split: the scores of the model as it is served.
Pick column groups and filters below; the legend under the table says what each shown column
measures and which direction is better (↑ higher, ↓ lower). Sort from a column's header.
The downloads give the rows as shown: CSV of the table, JSON with every field of those rows.
Click a row for its details; the Pareto plot below shows the same rows, quality against cost.
"""

EMPTY_WHILE_RUNNING = """\
**No results yet.** The run above is training the first variant; its rows appear here as they
land, without a reload.
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
    """The store's leaderboard rows with backend, precision, task, base model and size on disk added."""
    variants = {v.id: {"task": v.task, "base_model": v.base_model, **model_size(v)} for v in store.list_variants()}
    rows = columns.enrich(store.leaderboard(), variants)
    sizes: dict[tuple, float | None] = {}
    for row in rows:
        key = (row["variant"], row["engine"])
        if key not in sizes:
            sizes[key] = served_size_mb(store, *key)
        if sizes[key] is not None:
            row[pareto.SIZE] = sizes[key]
    return rows


def model_size(record: Any) -> dict[str, float]:
    """The variant's parameter count in millions and, for a pruned variant, the share of its
    parent's it kept (from its lineage); empty where the lineage does not say."""
    summary = record.train_summary or {}
    total = (summary.get("trainable_parameters") or {}).get("total")
    out = {"params_m": round(total / 1e6, 2)} if isinstance(total, (int, float)) and total > 0 else {}
    kept = ((summary.get("pruning") or {}).get("parameters") or {}).get("kept")
    if isinstance(kept, (int, float)):
        out["params_kept"] = round(float(kept), 4)
    return out


def served_size_mb(store: Any, variant_id: str, engine: str) -> float | None:
    """MB on disk of what serves a row: the engine's folder, or the torch model's (model and
    adapter folders); None when the files are not there."""
    base = Path(store.variant_path(variant_id))
    folders = [base / "model", base / "adapter"] if engine == row_details.TORCH_MODEL else \
        [Path(store.engine_path(variant_id, engine))]
    total = sum(f.stat().st_size for folder in folders if folder.is_dir() for f in folder.rglob("*") if f.is_file())
    return round(total / 2**20, 2) if total else None


@functools.lru_cache(maxsize=1)
def _download_folder() -> Path:
    """One folder of downloads per process, removed at exit: files are named by their content, so
    every app built in the process can share it (a folder per build left one behind per build)."""
    import atexit
    import shutil

    folder = Path(tempfile.mkdtemp(prefix="evalhub-leaderboard-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


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
    """The mixed-tasks notice, the shown table, its legend and the two downloads, for the controls'
    current values."""
    filters = _filters(facets)
    frame = columns.view(rows, groups, filters, search)
    shown = columns.filter_rows(rows, filters, search)
    csv_path, json_path = download_files(shown, frame, folder)
    mixed = columns.mixed_tasks(shown)
    return (gr.Markdown(mixed, visible=bool(mixed)),
            gr.Dataframe(value=frame, datatype=columns.datatypes(frame.columns)), columns.legend(frame.columns),
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


# -- the Pareto plot (pure part in hub/ui/pareto.py) --------------------------------------

def _axis_title(metric: str) -> str:
    return f"{metric} ({'↓ lower' if pareto.better(metric) == 'lower' else '↑ higher'} is better)"


def plot_props(rows: list[dict], quality: str | None, cost: str | None, search: str,
               *facets: list[str]) -> tuple[dict, str]:
    """The plot's properties for the rows the table shows (same filters and search), and the line
    under it. Plain values, not a component: a component made while the layout is being built
    would be drawn on the page."""
    shown = columns.filter_rows(rows, _filters(facets), search)
    if not quality or not cost:
        empty = pd.DataFrame(columns=pareto.FRAME_COLUMNS).astype({"quality": float, "cost": float})
        # hidden, not empty: gradio 6's plot drawn first with no rows never draws the points it is sent later
        return {"value": empty, "visible": False}, "No rows to plot: no row has both a quality metric and a latency yet."
    frame, left_out, frontier_rows = pareto.plot_data(shown, quality, cost)
    return ({"value": frame, "visible": not frame.empty, "x_title": _axis_title(cost),
             "y_title": _axis_title(quality),
             "color_map": pareto.colour_map(frame)},
            pareto.note(left_out, frontier_rows, quality, cost))


def plot_view(rows: list[dict], quality: str | None, cost: str | None, search: str, *facets: list[str]) -> tuple:
    """The plot update and the line under it (an event's outputs)."""
    props, note = plot_props(rows, quality, cost, search, *facets)
    return gr.ScatterPlot(**props), note


def _pick(chosen: str | None, choices: list[str], preferred: tuple[str, ...]) -> str | None:
    if chosen in choices:
        return chosen
    return next((c for p in preferred for c in choices if c.startswith(p)), choices[0] if choices else None)


def reload_plot(rows: list[dict], quality: str | None, cost: str | None, search: str, *facets: list[str]) -> tuple:
    """Both axis dropdowns with the metrics the rows now hold (keeping the chosen ones), and the plot."""
    qualities, costs = pareto.quality_choices(rows), pareto.cost_choices(rows)
    quality = _pick(quality, qualities, pareto.preferred_quality())
    cost = _pick(cost, costs, ("p50_ms_b1_", "p50_ms_"))
    return (gr.Dropdown(choices=qualities, value=quality), gr.Dropdown(choices=costs, value=cost),
            *plot_view(rows, quality, cost, search, *facets))


def _plot_controls(rows: list[dict]) -> dict[str, Any]:
    qualities, costs = pareto.quality_choices(rows), pareto.cost_choices(rows)
    chosen = _pick(None, qualities, pareto.preferred_quality()), _pick(None, costs, ("p50_ms_b1_", "p50_ms_"))
    first, text = plot_props(rows, *chosen, "")
    with gr.Accordion("Pareto plot: quality against cost", open=True):
        with gr.Row():
            quality = gr.Dropdown(choices=qualities, value=chosen[0], label="Quality (y)", scale=1, min_width=160)
            cost = gr.Dropdown(choices=costs, value=chosen[1], label="Latency, throughput or size (x)", scale=1,
                               min_width=160)
        plot = gr.ScatterPlot(x="cost", y="quality", color="series", tooltip=pareto.TOOLTIP, color_title="backend",
                              height=420, buttons=["fullscreen", "export"], **first)
        note = gr.Markdown(text)
    return {"quality": quality, "cost": cost, "plot": plot, "note": note}


def _wire_plot(rows: list[dict], state: Any, view_inputs: list) -> tuple:
    """The plot follows the axis dropdowns and the table's search and filters; its reload entry."""
    ui = _plot_controls(rows)
    search, facets = view_inputs[1], view_inputs[2:]
    inputs = [state, ui["quality"], ui["cost"], search, *facets]
    for control in [ui["quality"], ui["cost"], *view_inputs[1:]]:
        control.input(plot_view, inputs=inputs, outputs=[ui["plot"], ui["note"]], api_visibility="private")
    return ui, (reload_plot, inputs, [ui["quality"], ui["cost"], ui["plot"], ui["note"]])


# -- row details: a click on a table row (pure-ish part in hub/ui/row_details.py) --------------

def _details_panel() -> dict[str, Any]:
    with gr.Column(visible=False) as panel:
        heading = gr.Markdown()
        with gr.Row():
            inspect_button = gr.Button("Open in Inspect", variant="primary", size="sm", scale=0, min_width=140)
            close = gr.Button("Close", size="sm", scale=0, min_width=80)
        worst = gr.Dataframe(headers=["text", "gold", "predicted", "p_gold"], interactive=False, wrap=True,
                             label="Worst-scored examples (lowest probability of the gold label first)")
        with gr.Row():
            lineage = gr.JSON(label="Lineage")
            engine = gr.JSON(label="Engine: parity and latency reports")
        with gr.Row():
            run_config = gr.JSON(label="Run config")
            suite = gr.JSON(label="Suite settings (each run's steps)")
    close.click(lambda: gr.Column(visible=False), outputs=panel, api_visibility="private")
    return {"panel": panel, "heading": heading, "inspect_button": inspect_button, "worst": worst,
            "lineage": lineage, "engine": engine, "run_config": run_config, "suite": suite}


def details_of(store: Any, variant: str, engine: str, split: str) -> dict:
    """:func:`hub.ui.row_details.row_details` with the app's error (gr.Error) for an unknown row."""
    try:
        return row_details.row_details(store, variant, engine, split)
    except UserError as exc:
        raise gr.Error(str(exc)) from None


def show_details(store: Any, rows: list[dict], table: pd.DataFrame, evt: gr.SelectData) -> tuple:
    """The clicked row (found from its cells, not its position: the browser sorts and filters)
    opened in the details panel; the variant id goes to the ``selected_variant`` state."""
    row = row_details.find_row(rows, list(table.columns), list(evt.row_value or []))
    if row is None:
        raise gr.Error("That row is no longer on the leaderboard; press Refresh.")
    details = details_of(store, row["variant"], row["engine"], row["split"])
    worst = pd.DataFrame(details["worst_examples"], columns=["text", "gold", "predicted", "p_gold"])
    first = "" if len(worst) else "\n\nNo per-example predictions are stored for this row."
    heading = (f"### {row.get('name') or row['variant']} @ {row['engine']} on {row['split']}\n"
               f"Variant `{row['variant']}` ({details['row']['task']}), {len(details['suite'])} run(s).{first}")
    return (gr.Column(visible=True), heading, worst, details["lineage"], details["engine"], details["run_config"],
            details["suite"], row["variant"])


def build_leaderboard_tab(ctx: Any) -> dict[str, Any]:
    """The tab's components and its own events. The app wires Refresh (it also updates other
    tabs): ``full_fn`` -> ``full``, the hidden whole table the ``leaderboard`` endpoint returns,
    then every tab's ``reload``; this tab's re-reads the store into the view."""
    store = ctx.store
    folder = _download_folder()   # downloads; never the store
    rows = store_rows(store)
    with gr.Row():
        gr.Markdown(HEADER)
        refresh = gr.Button("Refresh", variant="secondary", size="sm", scale=0, min_width=100)
    running = getattr(ctx, "progress", None) is not None   # a run in this process feeds the store
    notice = gr.Markdown(EMPTY_WHILE_RUNNING if running else EMPTY, visible=not rows)
    controls = _controls(rows)
    frame = columns.view(rows)
    mixed = gr.Markdown(columns.mixed_tasks(rows), visible=bool(columns.mixed_tasks(rows)))
    table = gr.Dataframe(value=frame, datatype=columns.datatypes(frame.columns), label="Results",
                         interactive=False, max_height=600, wrap=False, buttons=["fullscreen", "copy"])
    csv_path, json_path = download_files(rows, frame, folder)
    with gr.Row():
        csv_button = gr.DownloadButton("Download CSV (as shown)", value=csv_path, size="sm",
                                       interactive=csv_path is not None)
        json_button = gr.DownloadButton("Download JSON (shown rows, every field)", value=json_path,
                                        size="sm", interactive=json_path is not None)
    details = _details_panel()
    with gr.Accordion("What the columns measure", open=False):
        legend = gr.Markdown(columns.legend(frame.columns))
    full = gr.Dataframe(value=leaderboard_frame(store), visible=False, interactive=False)
    state = gr.State(rows)
    inputs = [controls["groups"], controls["search"], *controls["facets"]]
    shown = [mixed, table, legend, csv_button, json_button]
    plot, plot_reload = _wire_plot(rows, state, inputs)
    selected = _wire_details(store, state, table, details)

    on_input = functools.partial(show, folder=folder)
    reload = functools.partial(reload_view, store, folder)
    for control in inputs:
        control.input(on_input, inputs=[state, *inputs], outputs=shown, api_visibility="private")
    return {"table": table, "full": full, "full_fn": lambda: leaderboard_frame(store), "notice": notice,
            "refresh": refresh, "state": state, "mixed": mixed, "plot": plot["plot"], "plot_note": plot["note"],
            "details": details["panel"], "inspect_button": details["inspect_button"], "selected_variant": selected,
            "reload": [(reload, inputs, [state, *shown, *controls["facets"]]), plot_reload,
                       (lambda: empty_notice(store), None, notice)]}


def _wire_details(store: Any, state: Any, table: Any, details: dict) -> Any:
    """A click on a table row opens its details; ``/row_details`` (variant, engine, split) -> the
    same details as JSON. Returns the ``selected_variant`` state (the clicked row's variant id)."""
    selected = gr.State(None)
    outputs = [details[k] for k in ("panel", "heading", "worst", "lineage", "engine", "run_config", "suite")]

    def on_select(rows: list[dict], shown: pd.DataFrame, evt: gr.SelectData) -> tuple:
        return show_details(store, rows, shown, evt)

    table.select(on_select, inputs=[state, table], outputs=[*outputs, selected], api_visibility="private")

    def row_details_endpoint(variant: str, engine: str, split: str) -> dict:
        """Run config, lineage, engine parity/latency reports, suite settings and the worst-scored
        examples of the leaderboard row (variant id, engine as the table shows it, split)."""
        return details_of(store, variant, engine, split)

    gr.api(row_details_endpoint, api_name="row_details")
    return selected
