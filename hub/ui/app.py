"""The evalhub Gradio app: Leaderboard, Demo and Inspect tabs over one store.

``build_app(store)`` returns the ``gr.Blocks`` (Spaces import it); ``launch(store, ...)``
serves it (``evalhub serve`` and ``evalhub demo`` call it). Building reads the store's
tables but loads no model and touches no network.

API endpoints (``gradio_client``): ``/predict`` (variant_id, text, engine) -> label confidences
(engine: "torch" for the variant's torch model, or an engine id);
``/leaderboard`` () -> the leaderboard table; ``/robustness_records`` and ``/fairness_records``
(variant_id, run_id) -> a run's flips; ``/explanation`` (run_id, example, method) -> word
attributions and scores of one explained example (see ``hub/ui/inspect_tab.py``).

Errors an app user sees are the app's own short sentences (``gr.Error``): they quote the
user's value escaped and cut (``hub.errors.quote``) and name neither the store's path nor the
other stored ids, which the store's own messages do. The loaded predictors are a bounded
cache (``hub/ui/predictor_cache.py``).
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from hub.ui.demo_tab import (PredictorCache, answered_by, build_demo_tab, classify, refresh_engines,
                             refresh_variants, variants_notice)
from hub.ui.inspect_tab import build_inspect_tab
from hub.ui.leaderboard import build_leaderboard_tab, empty_notice, leaderboard_frame

INTRO = "# evalhub\nEvery variant scored on one scorecard, and a demo of each."


def build_app(store: Any, *, cache_size: int | None = None, max_loads: int | None = None) -> gr.Blocks:
    """The app over ``store``. ``cache_size``: predictors kept loaded (default
    ``$EVALHUB_APP_CACHE_SIZE``, else 4); ``max_loads``: models loading at once (default
    ``$EVALHUB_APP_MAX_LOADS``, else 1). UserError when either is not a whole number >= 1."""
    cache = PredictorCache(store, max_size=cache_size, max_loads=max_loads)

    # -- model functions ----------------------------------------------------------------
    def predict(variant_id: str | None, text: str | None, engine: str | None = None) -> dict[str, float]:
        return classify(cache, variant_id, text, engine)

    def engine_line(variant_id: str | None, engine: str | None = None) -> str:
        return answered_by(cache, variant_id, engine)

    def engines_of(variant_id: str | None) -> gr.Dropdown:
        return refresh_engines(store, variant_id)

    def leaderboard() -> pd.DataFrame:
        return leaderboard_frame(store)

    def refresh_others(current: str | None) -> tuple[gr.Component, ...]:
        """The empty-store notices and the variant list (the leaderboard view reloads itself)."""
        return (empty_notice(store), variants_notice(store),
                refresh_variants(store, current))

    # -- layout and events --------------------------------------------------------------
    with gr.Blocks(title="evalhub", analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Leaderboard"):
            board = build_leaderboard_tab(store)
        with gr.Tab("Demo"):
            ui = build_demo_tab(store)
        with gr.Tab("Inspect"):
            inspect = build_inspect_tab(store)
        refreshed = [board["notice"], ui["notice"], ui["variant"]]

        board["refresh"].click(leaderboard, outputs=board["full"], api_name="leaderboard").then(
            refresh_others, inputs=ui["variant"], outputs=refreshed,
            api_visibility="private").then(
            board["reload"], inputs=board["reload_inputs"], outputs=board["reload_outputs"],
            api_visibility="private")
        answer = gr.on([ui["submit"].click, ui["text"].submit], predict,
                       inputs=[ui["variant"], ui["text"], ui["engine"]], outputs=ui["label"], api_name="predict")
        answer.success(engine_line, inputs=[ui["variant"], ui["engine"]], outputs=ui["info"],
                       api_visibility="private")
        answer.failure(lambda: "", outputs=ui["info"], api_visibility="private")  # no stale engine line
        ui["variant"].change(lambda: (None, ""), outputs=[ui["label"], ui["info"]], api_visibility="private")
        ui["variant"].change(engines_of, inputs=ui["variant"], outputs=ui["engine"], api_visibility="private")
        ui["engine"].change(lambda: (None, ""), outputs=[ui["label"], ui["info"]], api_visibility="private")
        demo.load(board["reload"], inputs=board["reload_inputs"], outputs=board["reload_outputs"],
                  api_visibility="private").then(
            refresh_others, inputs=ui["variant"], outputs=refreshed,
            api_visibility="private")
        demo.load(inspect["reload"], inputs=inspect["variant"], outputs=inspect["outputs"], api_visibility="private")
    return demo


def launch(store: Any, *, port: int = 7860, share: bool = False, prevent_thread_lock: bool = False,
           server_name: str = "127.0.0.1", cache_size: int | None = None,
           max_loads: int | None = None) -> gr.Blocks:
    """Build and serve the app; returns the running Blocks (call ``.close()`` to stop it).
    ``cache_size`` and ``max_loads`` as in :func:`build_app`."""
    demo = build_app(store, cache_size=cache_size, max_loads=max_loads)
    demo.launch(server_name=server_name, server_port=port, share=share,
                prevent_thread_lock=prevent_thread_lock)
    return demo
