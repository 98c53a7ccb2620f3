"""A run's progress, shown live in the app while the run feeds its store (``evalhub demo``).

``Progress`` is written by the run's thread and read by the app's: each stage is pending,
running, done, failed or skipped, with a detail line (training: the step count and loss; an
engine search: the candidate being measured; a scorecard: the evaluator running) and its
times. ``build_progress_panel`` shows it as a table that a timer refreshes every second until
the run finishes, then once more.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hub.errors import clean

# words, not emoji: a browser without an emoji font draws those as boxes
STATUS = {"pending": "waiting", "running": "**running**", "done": "done ✓", "failed": "**failed** ✗", "skipped": "skipped"}


@dataclass
class Stage:
    key: str
    title: str
    status: str = "pending"
    detail: str = ""
    started: float | None = None
    finished: float | None = None

    def elapsed(self, now: float) -> str:
        if self.started is None:
            return ""
        seconds = (self.finished or now) - self.started
        return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


@dataclass
class Progress:
    """Stages in order; every method is safe to call from any thread."""
    stages: list[Stage]
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    note: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def of(cls, stages: list[tuple[str, str]]) -> "Progress":
        return cls([Stage(key, title) for key, title in stages])

    def _stage(self, key: str) -> Stage:
        for stage in self.stages:
            if stage.key == key:
                return stage
        raise KeyError(key)

    def start(self, key: str, detail: str = "") -> None:
        with self._lock:
            stage = self._stage(key)
            stage.status, stage.detail, stage.started = "running", detail, time.monotonic()

    def update(self, key: str, detail: str) -> None:
        with self._lock:
            self._stage(key).detail = detail

    def done(self, key: str, detail: str | None = None) -> None:
        self._end(key, "done", detail)

    def fail(self, key: str, detail: str) -> None:
        self._end(key, "failed", detail)

    def _end(self, key: str, status: str, detail: str | None) -> None:
        with self._lock:
            stage = self._stage(key)
            stage.status, stage.finished = status, time.monotonic()
            stage.started = stage.started or stage.finished
            if detail is not None:
                stage.detail = detail

    def finish(self, note: str = "") -> None:
        """The run is over: stages not reached are marked skipped."""
        with self._lock:
            for stage in self.stages:
                if stage.status in ("pending", "running"):
                    stage.status = "skipped" if stage.status == "pending" else "failed"
            self.ended, self.note = time.monotonic(), note

    def to_dict(self) -> dict:
        """The stages as data (the ``/progress`` endpoint): key, title, status, detail, seconds."""
        with self._lock:
            now = time.monotonic()
            return {"finished": self.finished, "note": self.note,
                    "stages": [{"key": s.key, "title": s.title, "status": s.status, "detail": s.detail,
                                "seconds": None if s.started is None else round((s.finished or now) - s.started, 1)}
                               for s in self.stages]}

    @property
    def finished(self) -> bool:
        return self.ended is not None

    def markdown(self) -> str:
        """The panel's text: one table row per stage, then the total time."""
        with self._lock:
            now = time.monotonic()
            lines = ["| status | stage | now | time |", "|---|---|---|---|"]
            for s in self.stages:
                detail = clean(s.detail, 160).replace("|", "\\|")
                lines.append(f"| {STATUS[s.status]} | {s.title} | {detail} | {s.elapsed(now)} |")
            total = (self.ended or now) - self.started
            state = "finished" if self.finished else "running"
            lines.append(f"\n**{state}**, {total / 60:.1f} min. {clean(self.note, 300)}".rstrip())
            return "\n".join(lines)


def build_progress_panel(progress: Progress) -> dict[str, Any]:
    """The panel (open while the run is going) and its 1 s timer; ``reload`` for the app's contract."""
    import gradio as gr

    with gr.Accordion("Run in progress: stages of `evalhub demo`", open=True) as box:
        text = gr.Markdown(progress.markdown())
    timer = gr.Timer(1.0, active=not progress.finished)

    def refresh() -> tuple:
        # after the run, one last refresh and the timer stops
        return progress.markdown(), gr.Timer(active=not progress.finished)

    timer.tick(refresh, outputs=[text, timer], api_visibility="private", show_progress="hidden", queue=False)
    state = gr.JSON(visible=False)
    gr.Button(visible=False).click(progress.to_dict, outputs=state, api_name="progress")
    return {"panel": box, "text": text, "reload": (lambda: progress.markdown(), None, text)}
