"""The Leaderboard tab: one row per variant x engine x split, with every metric.

Column order follows ``hub.report.leaderboard_columns`` (the CLI's table), with the
variant's name, the accuracy confidence interval (as text) and the dataset added.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from hub.report import leaderboard_columns

TEXT_COLUMNS = {"variant", "name", "method", "engine", "dataset", "split", "accuracy_ci", "settings"}

HEADER = """\
## Leaderboard
One row per variant × engine × split: the scores of the model as it is served.

- Higher is better: `accuracy`, `f1_macro`, `f1_micro`, `mcc` (Matthews correlation).
- Lower is better: `ece` (expected calibration error), `brier` (Brier score).
- `accuracy_ci`: bootstrap confidence interval of accuracy (95% unless the suite sets another level).
- `settings`: options a suite changed from their defaults in the runs a row shows (such as
  `robustness severity=0.3`); compare such scores only with rows run the same way.

Sort or filter from a column's ⋮ menu (click its header); type in the search box to find rows.
"""

EMPTY = """\
**No results yet.** Run `evalhub demo` to fine-tune and evaluate the default model
(or `evalhub train CONFIG.yaml` then `evalhub eval VARIANT`), then press **Refresh**.
"""


def table_columns(rows: list[dict]) -> list[str]:
    """The report's column order, plus name after variant, CI after accuracy, dataset last."""
    columns = leaderboard_columns(rows)
    columns.insert(columns.index("variant") + 1, "name")
    columns.append("dataset")
    if any("accuracy_ci" in r for r in rows) and "accuracy" in columns:
        columns.insert(columns.index("accuracy") + 1, "accuracy_ci")
    return columns


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
    columns = table_columns(rows)
    data = [[_cell(row, c) for c in columns] for row in rows]
    return pd.DataFrame(data, columns=columns, dtype=object)


def datatypes(frame: pd.DataFrame) -> list[str]:
    """"number" for metric columns, so they sort numerically; "str" for the rest."""
    return ["str" if c in TEXT_COLUMNS else "number" for c in frame.columns]


def column_types(store: Any) -> gr.Dataframe:
    """An update setting only the column types: which metric columns exist varies by store.

    Kept apart from the value so the ``leaderboard`` API endpoint returns the plain table.
    """
    return gr.Dataframe(datatype=datatypes(leaderboard_frame(store)))


def empty_notice(store: Any) -> gr.Markdown:
    return gr.Markdown(visible=not store.leaderboard())


def build_leaderboard_tab(store: Any) -> tuple[gr.Dataframe, gr.Markdown, gr.Button]:
    """The tab's components; the caller wires the Refresh button (it also updates other tabs)."""
    frame = leaderboard_frame(store)
    with gr.Row():
        gr.Markdown(HEADER)
        refresh = gr.Button("Refresh", variant="secondary", size="sm", scale=0, min_width=100)
    notice = gr.Markdown(EMPTY, visible=frame.empty)
    table = gr.Dataframe(
        value=frame, datatype=datatypes(frame), label="Results", interactive=False,
        show_search="search", max_height=600, wrap=False,
        buttons=["fullscreen", "copy"])
    return table, notice, refresh
