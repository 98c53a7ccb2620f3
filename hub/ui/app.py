"""The evalhub Gradio app: Leaderboard, Demo, Compare, Inspect and Model card tabs over one store.

``build_app(store)`` returns the ``gr.Blocks`` (Spaces import it); ``launch(store, ...)``
serves it (``evalhub serve`` and ``evalhub demo`` call it). Building reads the store's
tables but loads no model and touches no network.

Each tab is a module with a ``build_*_tab(ctx: AppContext) -> dict`` that lays the tab out and
wires its own events and API endpoints. What the app needs back from a tab is under
``"reload"``: a list of ``(fn, inputs, outputs)`` the app runs on page load, on Refresh and
whenever the store changes (a timer compares the results database's size and time; while a
demo run is in progress it ticks every 2 s, so rows appear as they land).

API endpoints (``gradio_client``), by tab: ``/predict`` (variant_id, text, engine) -> label
confidences (engine: "torch" for the variant's torch model, or an engine id) and the Demo
tab's others (see ``hub/ui/demo_tab.py``); ``/leaderboard`` () -> the leaderboard table and
``/row_details`` (variant, engine, split) -> one row's details (``hub/ui/leaderboard.py``);
``/progress`` () -> the stages of a run in progress (``hub/ui/progress.py``);
``/compare`` and ``/card`` (``hub/ui/compare_tab.py``, ``hub/ui/card_tab.py``);
``/robustness_records``, ``/fairness_records`` and ``/explanation`` (``hub/ui/inspect_tab.py``).

Errors an app user sees are the app's own short sentences (``gr.Error``): they quote the
user's value escaped and cut (``hub.errors.quote``) and name neither the store's path nor the
other stored ids, which the store's own messages do. The loaded predictors are a bounded
cache (``hub/ui/predictor_cache.py``). What shows (title, tabs, the variants on show) is an
:class:`~hub.ui.app_config.AppConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from hub.ui.app_config import AppConfig, view_of
from hub.ui.predictor_cache import PredictorCache

LIVE_TICK_S, IDLE_TICK_S = 2.0, 15.0   # store polling while a demo run is in progress, and after


@dataclass
class AppContext:
    """What every tab builder gets: the store as the app shows it, the shared predictor cache,
    the app config, and the progress of a run in this process (``evalhub demo``), if any."""
    store: Any
    cache: PredictorCache
    config: AppConfig
    progress: Any = None


TAB_BUILDERS = {   # config key -> (tab label, module and function that build it)
    "leaderboard": ("Leaderboard", "hub.ui.leaderboard", "build_leaderboard_tab"),
    "demo": ("Demo", "hub.ui.demo_tab", "build_demo_tab"),   # "demo" is every task's demo widget: see demo_widgets
    "compare": ("Compare", "hub.ui.compare_tab", "build_compare_tab"),
    "inspect": ("Inspect", "hub.ui.inspect_tab", "build_inspect_tab"),
    "card": ("Model card", "hub.ui.card_tab", "build_card_tab"),
    "submit": ("Submit", "hub.ui.submit_tab", "build_submit_tab"),
}


def _builder(key: str) -> tuple[str, Callable[[AppContext], dict]]:
    import importlib

    label, module, name = TAB_BUILDERS[key]
    return label, getattr(importlib.import_module(module), name)


@dataclass
class DemoWidget:
    """One task demo widget (``Task.demo_tab``) as a tab: its id, label, builder and tasks."""
    tab_id: str
    label: str
    build: Callable[[AppContext], dict]
    tasks: frozenset[str]

    def shown(self, store: Any, first: bool) -> bool:
        """Shown when the store has a variant of one of its tasks; the first widget also when the
        store has none at all (its notice says how to make one)."""
        tasks = {v.task for v in store.list_variants()}
        return bool(tasks & self.tasks) or (first and not tasks)


def demo_widgets() -> list[DemoWidget]:
    """The demo widgets the registered tasks name, in task order, each once. A widget module
    declares ``TAB_ID`` and ``TAB_LABEL`` beside its builder."""
    import importlib

    from hub.registries import TASKS

    found: dict[str, set[str]] = {}
    for name in TASKS.names():
        target = TASKS.get(name).demo_tab
        if target:
            found.setdefault(target, set()).add(name)
    widgets = []
    for target, tasks in found.items():
        module_name, attr = target.split(":")
        module = importlib.import_module(module_name)
        widgets.append(DemoWidget(module.TAB_ID, module.TAB_LABEL, getattr(module, attr), frozenset(tasks)))
    return widgets


def _build_demo_tabs(ctx: AppContext, tabs: dict[str, dict]) -> None:
    """One tab per task demo widget; a widget with no variant of its tasks starts hidden and
    shows once one lands (its reload returns the tab's visibility)."""
    for index, widget in enumerate(demo_widgets()):
        with gr.Tab(widget.label, id=widget.tab_id, visible=widget.shown(ctx.store, index == 0)) as tab:
            built = widget.build(ctx)
        shown = (lambda w, first: lambda: gr.Tab(visible=w.shown(ctx.store, first)))(widget, index == 0)
        built.setdefault("reload", []).append((shown, None, tab))
        tabs[widget.tab_id] = built


def store_stamp(store: Any) -> str:
    """Changes whenever the results database does; cheap (:meth:`hub.store.Store.stamp`)."""
    return store.stamp()


def _header(config: AppConfig) -> None:
    with gr.Row():
        if config.logo:
            gr.Image(config.logo, show_label=False, container=False, height=64, width=64, scale=0,
                     interactive=False, buttons=[])
        gr.Markdown(f"# {config.title}\n{config.description}")


def build_app(store: Any, *, config: AppConfig | None = None, cache_size: int | None = None,
              max_loads: int | None = None, progress: Any = None) -> gr.Blocks:
    """The app over ``store``. ``config``: what shows (default :class:`AppConfig`); ``cache_size``:
    predictors kept loaded (default ``$EVALHUB_APP_CACHE_SIZE``, else 4); ``max_loads``: models
    loading at once (default ``$EVALHUB_APP_MAX_LOADS``, else 1); ``progress``: a
    :class:`hub.ui.progress.Progress` of a run feeding this store, shown as a panel. UserError
    when a limit is not a whole number >= 1."""
    config = config or AppConfig()
    view = view_of(store, config)
    ctx = AppContext(store=view, cache=PredictorCache(view, max_size=cache_size, max_loads=max_loads),
                     config=config, progress=progress)
    with gr.Blocks(title=config.title, analytics_enabled=False) as demo:
        _header(config)
        panel = None
        if progress is not None:
            from hub.ui.progress import build_progress_panel

            panel = build_progress_panel(progress)
        tabs: dict[str, dict] = {}
        with gr.Tabs() as tab_row:
            for key in config.tabs:
                if key == "demo":
                    _build_demo_tabs(ctx, tabs)
                    continue
                label, build = _builder(key)
                with gr.Tab(label, id=key):
                    tabs[key] = build(ctx)
        _link_inspect(tabs, tab_row)
        reloads = [r for tab in tabs.values() for r in tab.get("reload", [])]
        if panel is not None:
            reloads.insert(0, panel["reload"])

        def chain(trigger: Any) -> None:
            for fn, inputs, outputs in reloads:
                trigger = trigger.then(fn, inputs=inputs, outputs=outputs, api_visibility="private")

        # a page shows the store as it is when opened (the layout holds it as it was at build time);
        # no spinners for that: the values shown meanwhile are the build-time ones
        quiet = {"api_visibility": "private", "show_progress": "hidden"}
        first, *rest = reloads or [(lambda: None, None, None)]
        chain_start = demo.load(first[0], inputs=first[1], outputs=first[2], **quiet)
        for fn, inputs, outputs in rest:
            chain_start = chain_start.then(fn, inputs=inputs, outputs=outputs, **quiet)
        if "leaderboard" in tabs:
            board = tabs["leaderboard"]
            chain(board["refresh"].click(board["full_fn"], outputs=board["full"], api_name="leaderboard"))

        # live rows: a timer re-reads the store when its database changed
        live = progress is not None and not progress.finished
        timer = gr.Timer(LIVE_TICK_S if live else IDLE_TICK_S)
        stamp = gr.State(store_stamp(store))
        changed = gr.State(False)

        def tick(previous: str) -> tuple:
            now = store_stamp(store)
            slow = progress is None or progress.finished
            return now, now != previous, gr.Timer(IDLE_TICK_S if slow else LIVE_TICK_S)

        ticked = timer.tick(tick, inputs=stamp, outputs=[stamp, changed, timer], api_visibility="private",
                            show_progress="hidden", queue=False)
        for fn, inputs, outputs in reloads:
            guarded = _when(fn, changed)
            ticked = ticked.then(guarded, inputs=[changed, *_as_list(inputs)], outputs=outputs,
                                 api_visibility="private", show_progress="hidden")
    demo.queue(default_concurrency_limit=config.concurrency_limit)
    return demo


def _link_inspect(tabs: dict[str, dict], tab_row: gr.Tabs) -> None:
    """The leaderboard's "Open in Inspect" shows the selected row's variant on the Inspect tab."""
    board = tabs.get("leaderboard", {})
    if "inspect_button" not in board:
        return
    if "inspect" not in tabs:
        board["inspect_button"].visible = False
        return
    show, _, outputs = tabs["inspect"]["reload"][0]
    board["inspect_button"].click(lambda variant: (gr.Tabs(selected="inspect"), *show(variant)),
                                  inputs=board["selected_variant"], outputs=[tab_row, *outputs],
                                  api_visibility="private")


def _as_list(components: Any) -> list:
    if components is None:
        return []
    return list(components) if isinstance(components, (list, tuple, set)) else [components]


def _when(fn: Callable, changed: Any) -> Callable:
    """``fn`` run only when the store changed; otherwise every output is left as it is."""
    def guarded(was_changed: bool, *args: Any) -> Any:
        if not was_changed:
            return gr.skip()
        return fn(*args)
    return guarded


def auth_message(config: AppConfig) -> str:
    return config.login_message or f"Sign in to {config.title}."


def launch(store: Any, *, port: int = 7860, share: bool = False, prevent_thread_lock: bool = False,
           server_name: str = "127.0.0.1", cache_size: int | None = None, max_loads: int | None = None,
           config: AppConfig | None = None, auth: Any = None, progress: Any = None) -> gr.Blocks:
    """Build and serve the app; returns the running Blocks (call ``.close()`` to stop it).
    ``auth``: a list of (user, password) pairs or gradio's ``auth`` callable; the rest as in
    :func:`build_app`."""
    config = config or AppConfig()
    demo = build_app(store, config=config, cache_size=cache_size, max_loads=max_loads, progress=progress)
    extra = {"auth": auth, "auth_message": auth_message(config)} if auth else {}
    demo.launch(server_name=server_name, server_port=port, share=share, prevent_thread_lock=prevent_thread_lock,
                show_error=False, quiet=True, **extra)
    return demo
