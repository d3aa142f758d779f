"""What a render shows while it works, on stderr: a bar on a terminal, plain log lines every
few seconds anywhere else (a log file, CI), and a line at once for each stage."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dreamvideo.render.loop import FrameReport

if TYPE_CHECKING:
    from dreamvideo.scale.chunked import ChunkProgress

LOG_EVERY = 5.0  # seconds between plain progress lines when stderr is not a terminal
SMOOTHING = 0.2  # weight of the newest frame in the seconds-per-frame average


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class Rate:
    """Seconds per frame, smoothed, from touch-up frames only: the full dream of a first
    frame (or a scene cut) takes many times longer and would spoil the estimate."""

    def __init__(self) -> None:
        self.per_frame: float | None = None
        self._last: float | None = None

    def update(self, report: FrameReport, now: float) -> None:
        if self._last is not None and not report.fresh:
            spent = now - self._last
            self.per_frame = (
                spent
                if self.per_frame is None
                else SMOOTHING * spent + (1 - SMOOTHING) * self.per_frame
            )
        self._last = now

    def eta(self, remaining: int) -> float | None:
        return None if self.per_frame is None else remaining * self.per_frame


class Display:
    """Stage lines and frame progress for one render; use as a context manager."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.console = Console(file=self.stream, soft_wrap=True)
        self.label, self.rate, self._task = label, Rate(), None
        self.unit = "frame"  # what is counted: frames, or ascent steps for one picture
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("eta {task.fields[eta]}"),
            console=self.console,
            disable=not self.tty,
        )
        self._t0 = time.monotonic()
        self._last_line = float("-inf")
        self._workers: dict[int, ChunkProgress] = {}
        self._last_workers = float("-inf")

    def __enter__(self) -> Display:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)

    def stage(self, text: str) -> None:
        """Say at once what is happening (loading, reading, the first full dream)."""
        self.console.print(
            f"[{_clock(time.monotonic() - self._t0)}] {text}", markup=False, highlight=False
        )

    def frame(self, r: FrameReport) -> None:
        """After each frame: the bar, or a plain line every few seconds (and the first)."""
        now = time.monotonic()
        self.rate.update(r, now)
        eta = self.rate.eta(max(r.expected - r.done, 0))
        speed = (
            f"{1 / self.rate.per_frame:.2f} {self.unit}s/s"
            if self.rate.per_frame
            else f"first {self.unit}"
        )
        eta_text = _clock(eta) if eta is not None else "?"
        if self.tty:
            if self._task is None:
                self._task = self._bar.add_task(self.label, total=r.expected)
            self._bar.update(
                self._task,
                completed=r.done,
                total=max(r.expected, r.done),
                speed=speed,
                eta=eta_text,
            )
        elif now - self._last_line >= LOG_EVERY or r.done >= r.expected:
            self._last_line = now
            self.stage(f"{self.unit} {r.done} of {r.expected}, {speed}, eta {eta_text}")

    def worker(self, p: ChunkProgress) -> None:
        """A worker's report (``--workers``, or a lane's, ``--lanes``): a line per worker
        every few seconds, and at once when a worker reports for the first time (so its
        start shows)."""
        new = p.worker not in self._workers
        self._workers[p.worker] = p
        now = time.monotonic()
        if now - self._last_workers < LOG_EVERY and not new:
            return
        self._last_workers = now
        for k in sorted(self._workers):
            w = self._workers[k]
            on = f", GPU {w.gpus}" if w.gpus else ""
            on += f", {w.device}" if w.device else ""
            who = (
                f"worker {k + 1} on node {w.node} (pid {w.pid}{on})" if w.node else f"lane {k + 1}"
            )
            self.stage(f"  {who}: chunk {w.chunk}, {w.done}/{w.total} frames, {w.fps:.2f} frames/s")

    def steps(self, total: int) -> Callable[[int], None]:
        """A per-step callback for single pictures (``total`` ascent steps)."""
        done, self.unit = 0, "step"

        def advance(n: int) -> None:
            nonlocal done
            done += n
            self.frame(FrameReport(done, done, total, fresh=done == 1, coverage=1.0))

        return advance
