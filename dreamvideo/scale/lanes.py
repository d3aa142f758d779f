"""Chunks of a clip dreamed side by side in one process, as lanes (``video.lanes``): each lane
is a thread rendering one chunk at a time (:func:`dreamvideo.scale.worker.render_chunk`), and
their ascents run in lockstep as one batch on the device (:mod:`dreamvideo.engine.lanes`).

A Ray worker runs its chunks this way, and so does a render without ``--workers``; either
way the chunks are the ones the plan gives, joined by the driver as Ray workers' are.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dreamvideo.engine.dreamer import Dreamer
from dreamvideo.engine.lanes import LanesClosed, Lockstep
from dreamvideo.scale.worker import ChunkJob, ChunkResult, render_chunk


@dataclass(frozen=True)
class LaneProgress:
    """A lane's report: ``done`` of the chunk's ``total`` frames, at ``fps`` so far."""

    lane: int
    chunk: int
    done: int
    total: int
    fps: float


def render_lanes(
    jobs: list[ChunkJob],
    source: Path,
    dreamer: Dreamer,
    lanes: int,
    on_result: Callable[[ChunkResult], None],
    on_progress: Callable[[LaneProgress], None] | None = None,
    scratch: Path | None = None,
) -> None:
    """Render ``jobs`` on ``lanes`` lanes (a lane takes the next job when its chunk is done).
    ``on_result`` and ``on_progress`` are called in this thread, as chunks land and frames
    are done. The first error of any lane stops them all and is raised here; so is Ctrl-C,
    after the lanes have stopped (a lane's unfinished files are removed by its render)."""
    todo: queue.SimpleQueue[ChunkJob] = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    heard: queue.SimpleQueue[ChunkResult | LaneProgress | BaseException] = queue.SimpleQueue()
    lock = Lockstep(min(lanes, len(jobs)))

    def lane(slot: int) -> None:
        mine = dreamer.in_lanes(lock)
        try:
            while True:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                t0, total = time.perf_counter(), job.chunk.rendered

                def report(done: int, job: ChunkJob = job, t0: float = t0, total: int = total):
                    fps = done / max(time.perf_counter() - t0, 1e-9)
                    heard.put(LaneProgress(slot, job.chunk.index, done, total, fps))

                heard.put(render_chunk(job, source, mine, report, scratch))
        except LanesClosed:
            return  # stopped because another lane failed (its error is reported) or Ctrl-C
        except BaseException as e:
            heard.put(e)
            lock.close()
        finally:
            lock.leave()

    threads = [
        threading.Thread(target=lane, args=(k,), name=f"dreamvideo-lane-{k}", daemon=True)
        for k in range(lock.lanes)
    ]
    for t in threads:
        t.start()
    try:
        landed = 0
        while landed < len(jobs):
            try:
                got = heard.get(timeout=0.25)
            except queue.Empty:
                if not any(t.is_alive() for t in threads):
                    raise RuntimeError("the lanes stopped before every chunk landed") from None
                continue
            if isinstance(got, BaseException):
                raise got
            if isinstance(got, LaneProgress):
                if on_progress is not None:
                    on_progress(got)
                continue
            landed += 1
            on_result(got)
    finally:
        lock.close()
        for t in threads:
            t.join()
