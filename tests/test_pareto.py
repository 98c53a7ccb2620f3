"""The Leaderboard tab's Pareto plot (``hub/ui/pareto.py``): the frontier, the axis choices,
the plotted frame and the rows left out, on hand-made rows shaped like ``Store.leaderboard()``."""

from __future__ import annotations

import numpy as np

from hub.ui import columns, pareto

ORT, OV = "onnxruntime-int8-0a1b2c", "openvino-fp32-3d4e5f"


def _rows() -> list[dict]:
    return columns.enrich([
        {"variant": "v-full", "name": "full", "engine": "torch-fp32", "split": "test", "accuracy": 0.92,
         "f1_macro": 0.9, "ece": 0.04, "size_mb": 87.0},                                     # no latency
        {"variant": "v-full", "name": "full", "engine": ORT, "split": "test", "accuracy": 0.91, "f1_macro": 0.9,
         "p50_ms_b1_s128": 10.0, "p50_ms_b32_s128": 300.0, "throughput_b32_s128": 106.0, "size_mb": 23.0},
        {"variant": "v-full", "name": "full", "engine": OV, "split": "test", "accuracy": 0.92,
         "p50_ms_b1_s128": 20.0, "throughput_b32_s128": 90.0, "size_mb": 88.0},
        {"variant": "v-lora", "name": "lora", "engine": ORT, "split": "test", "accuracy": 0.85,
         "p50_ms_b1_s128": 12.0, "throughput_b32_s128": 120.0, "size_mb": 23.0},
        {"variant": "v-lora", "name": "lora", "engine": "torch-fp32", "split": "test", "f1_macro": 0.8},
    ])


def test_frontier_keeps_undominated_points_with_ties():
    x = [10, 20, 10, 5, 30, 5]
    y = [0.9, 0.95, 0.9, 0.7, 0.9, 0.6]
    #  (10, .9) twice: a tie, both kept; (30, .9) beaten by (20, .95); (5, .6) beaten by (5, .7)
    assert pareto.frontier(x, y).tolist() == [True, True, True, True, False, False]
    assert pareto.frontier([], []).tolist() == []
    assert pareto.frontier([1.0], [0.1]).tolist() == [True]


def test_frontier_follows_each_axis_direction():
    x, y = [100, 120, 90], [0.9, 0.8, 0.95]          # throughput: higher is better
    assert pareto.frontier(x, y, "higher", "higher").tolist() == [True, True, True]
    assert pareto.frontier(x, y, "lower", "higher").tolist() == [False, False, True]
    ece = [0.05, 0.02, 0.10]                           # a quality where lower is better
    assert pareto.frontier([10, 20, 5], ece, "lower", "lower").tolist() == [True, True, True]
    assert pareto.frontier([10, 20, 30], ece, "lower", "lower").tolist() == [True, True, False]


def test_axis_choices_and_directions():
    rows = _rows()
    assert pareto.quality_choices(rows)[:2] == ["accuracy", "f1_macro"]
    assert "ece" in pareto.quality_choices(rows) and "p50_ms_b1_s128" not in pareto.quality_choices(rows)
    assert pareto.cost_choices(rows) == ["p50_ms_b1_s128", "p50_ms_b32_s128", "throughput_b32_s128", "size_mb"]
    assert [pareto.better(m) for m in ("p50_ms_b1_s128", "throughput_b32_s128", "size_mb", "ece", "accuracy")] == [
        "lower", "higher", "lower", "lower", "higher"]
    assert pareto.cost_choices([{"accuracy": 0.5}]) == []


def test_plot_frame_counts_left_out_rows_and_orders_the_frontier():
    frame, left_out, front = pareto.plot_data(_rows(), "accuracy", "p50_ms_b1_s128")
    assert list(frame.columns) == pareto.FRAME_COLUMNS
    assert frame["quality"].dtype == np.float64 and frame["cost"].dtype == np.float64
    series = frame.groupby("series").size().to_dict()
    # 3 plotted rows by backend; ORT full (fastest) and OpenVINO (most accurate) on the frontier, lora@ORT beaten
    assert series == {"onnxruntime": 2, "openvino": 1, pareto.FRONTIER: 2}
    assert [(r["name"], r["engine"]) for r in front] == [("full", ORT), ("full", OV)]
    assert sum(left_out.values()) == 2 and len(left_out) == 1 and "no p50_ms_b1_s128" in next(iter(left_out))
    note = pareto.note(left_out, front, "accuracy", "p50_ms_b1_s128")
    assert "2 rows not plotted" in note and "build-engine" in note and f"full @ {ORT}" in note


def test_plot_frame_with_throughput_size_and_missing_quality():
    frame, left_out, front = pareto.plot_data(_rows(), "accuracy", "throughput_b32_s128")
    assert [r["engine"] for r in front] == [ORT, ORT, OV]                  # highest throughput first
    assert [r["name"] for r in front] == ["lora", "full", "full"]
    frame, left_out, front = pareto.plot_data(_rows(), "f1_macro", "size_mb")
    assert set(frame[frame["series"] != pareto.FRONTIER]["engine"]) == {"torch-fp32", ORT}
    reasons = dict(left_out)
    assert sum(reasons.values()) == 3
    assert reasons[next(r for r in reasons if r.startswith("no f1_macro"))] == 2   # OpenVINO and lora@ORT
    assert [r["engine"] for r in front] == [ORT]                           # 23 MB at 0.9 beats 87 MB at 0.9
    frame, left_out, front = pareto.plot_data([], "accuracy", "size_mb")
    assert frame.empty and list(frame.columns) == pareto.FRAME_COLUMNS and not left_out and not front
    assert pareto.note({}, [], "accuracy", "size_mb") == "No rows to plot."


def test_every_series_gets_a_colour():
    frame, _, _ = pareto.plot_data(_rows() + [{"variant": "x", "engine": "newbackend-fp16-1", "accuracy": 0.5,
                                               "p50_ms_b1_s128": 50.0}], "accuracy", "p50_ms_b1_s128")
    colours = pareto.colour_map(frame)
    assert set(colours) == set(frame["series"])
    assert colours[pareto.FRONTIER] == "#111111" and colours["newbackend"] in pareto.SPARE_COLOURS
    assert len(set(colours.values())) == len(colours)                    # one colour per series


def test_the_tab_plot_follows_filters_search_and_keeps_chosen_axes():
    from hub.ui.leaderboard import plot_view, reload_plot

    rows = _rows()
    no_filters = [[] for _ in columns.FACETS]
    plot, note = plot_view(rows, "accuracy", "p50_ms_b1_s128", "", *no_filters)
    assert set(plot.value["columns"]) == set(pareto.FRAME_COLUMNS) and len(plot.value["data"]) == 5
    assert plot.x_title == "p50_ms_b1_s128 (↓ lower is better)" and set(plot.color_map) == {
        "onnxruntime", "openvino", pareto.FRONTIER}
    backend = [["openvino"] if f == "backend" else [] for f in columns.FACETS]
    plot, note = plot_view(rows, "accuracy", "p50_ms_b1_s128", "", *backend)
    assert len(plot.value["data"]) == 2 and {d[2] for d in plot.value["data"]} == {OV}   # its point and the frontier
    assert "not plotted" not in note                       # the torch rows are filtered out, not left out
    plot, note = plot_view(rows, "accuracy", "p50_ms_b1_s128", "lora", *no_filters)
    assert {d[1] for d in plot.value["data"]} == {"v-lora"} and "1 row not plotted" in note
    quality, cost, plot, note = reload_plot(rows, "f1_macro", "gone_metric", "", *no_filters)
    assert (quality.value, cost.value) == ("f1_macro", "p50_ms_b1_s128")
    assert cost.choices[0][0] == "p50_ms_b1_s128"
    quality, cost, plot, note = reload_plot([], None, None, "", *no_filters)
    assert quality.value is None and plot.value["data"] == [] and note.startswith("No rows to plot")


def test_the_quality_axis_starts_on_the_task_headline():
    from hub.ui import pareto

    assert pareto.quality_choices([{"bleu": 0.1, "rougeL": 0.2, "chrf": 0.3}])[0] == "rougeL"
    assert pareto.quality_choices([{"f1_macro": 0.5, "accuracy": 0.6, "mcc": 0.2}])[:2] == ["accuracy", "f1_macro"]
