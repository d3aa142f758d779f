"""Clip renders as chunks (``--workers N``, ``--lanes N``): a cheap pre-pass finds the scene
cuts, the clip is planned as chunks (:mod:`dreamvideo.scale.chunks`), workers on a Ray cluster
render them in parallel (:mod:`dreamvideo.scale.cluster`), or this process does, in lanes
(:mod:`dreamvideo.scale.lanes`; each Ray worker runs lanes too), and this driver keeps every
finished chunk in ``OUTPUT.parts/``, cross-fades the overlaps, and joins the file with the
source's sound and the run's settings, as a single-process render does.

Nothing is lost: a chunk is written (flushed, checksummed, listed in ``done.json``) as soon
as it lands, so a driver that is killed continues with ``--resume``, rendering only the
chunks that are missing, in the batches they were planned in (a wave of ``video.lanes``
chunks is dreamed as one batch; a wave with a chunk missing is dreamed again whole, since a
chunk's frames depend on the batch it shares). The chunk plan is saved with the render: a
resume with more or fewer workers continues the chunks that were planned, only more or
fewer waves run at once. Other settings are refused.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from dreamvideo.config import Config
from dreamvideo.engine.dreamer import Dreamer
from dreamvideo.errors import UserError
from dreamvideo.media.checkpoint import CHUNKED, parts_dir
from dreamvideo.media.codecs import Encoding
from dreamvideo.media.ffmpeg import VideoWriter, join_segments
from dreamvideo.media.frames import read_frames
from dreamvideo.media.paths import temp_path
from dreamvideo.media.sequence import is_pattern
from dreamvideo.motion.flow import make_flow, track
from dreamvideo.render.clip import (
    ClipPlan,
    clip_sound,
    plan_step,
    prepare_clip,
    render_video,
)
from dreamvideo.render.loop import (
    FrameReport,
    Job,
    OnFrame,
    OnStage,
    RenderResult,
    file_fingerprint,
    finished_before,
    run_metadata,
)
from dreamvideo.render.network import dreamer_for
from dreamvideo.render.output import check_render_output
from dreamvideo.scale.chunks import Chunk, crossfade, plan_chunks
from dreamvideo.scale.lanes import LaneProgress, render_lanes
from dreamvideo.scale.store import ChunkStore, chunk_key, seam_key
from dreamvideo.scale.worker import PARTS, ChunkJob, ChunkResult, part_suffix

SCOUT_WIDTH = 128  # pixels: the scene-cut pre-pass needs only the coarse motion


def scout(plan: ClipPlan, scene_cut: float) -> tuple[list[int], int]:
    """Frames where a new shot starts, and how many frames the plan's range holds: the
    renderer's own test (share of pixels the flow can follow, forward-backward checked) on
    small frames read as the workers read them, so it costs a fraction of a render."""
    w, h = plan.size
    size = (SCOUT_WIDTH, max(16, round(h * SCOUT_WIDTH / w))) if w > SCOUT_WIDTH else plan.size
    flow = make_flow("dis", "ultrafast", None, None)
    cuts, prev, count = [], None, 0
    for index, frame in read_frames(plan.info, plan.first, plan.last, size):
        if prev is not None and track(prev, frame, flow, True).coverage < scene_cut:
            cuts.append(index)
        prev, count = frame, count + 1
    return cuts, count


def blend_seams(store: ChunkStore, chunks: list[Chunk], encoding: Encoding, fps: Fraction) -> None:
    """Cross-fade each overlap (the ending chunk's tail into the starting chunk's lead) into
    its own segment in the output's codec, once both chunks are in."""

    def frames(path: Path) -> np.ndarray:
        read = read_frames(path, alpha=encoding.alpha, deep=encoding.deep)
        return np.stack([f for _, f in read])

    for prev, chunk in zip(chunks, chunks[1:], strict=False):
        key = seam_key(chunk)
        if not chunk.lead or key in store.done:
            continue
        tail = store.file(chunk_key(prev), "tail")
        head = store.file(chunk_key(chunk), "head")
        if tail is None or head is None:
            continue
        mixed = crossfade(frames(tail), frames(head))
        h, w = mixed.shape[1:3]
        with temp_path(store.path(f"{key}{encoding.segment_suffix}")) as tmp:
            with VideoWriter(tmp, (w, h), fps, encoding.args, pix_fmt=encoding.pix_fmt) as out:
                for frame in mixed:
                    out.write(frame)
            store.add(key, {"main": tmp.read_bytes()})


@dataclass(frozen=True)
class ChunkProgress:
    """What the display hears from the workers (or from the lanes of this process)."""

    worker: int  # the worker's slot, or the lane's
    chunk: int
    done: int
    total: int
    fps: float
    node: str  # the Ray node; "" for a lane of this process
    pid: int
    gpus: str = ""  # the GPUs Ray gave the worker ("" for none, and for a lane)
    device: str = ""  # where the worker's network runs ("" for a lane)


def render_video_chunked(
    cfg: Config,
    source: str | Path,
    output: str | Path,
    *,
    workers: int | None = None,
    dreamer: Dreamer | None = None,
    address: str | None = None,
    gpus_per_worker: float | None = None,
    resume: bool = False,
    restart: bool = False,
    overwrite: bool = False,
    on_frame: OnFrame | None = None,
    on_stage: OnStage | None = None,
    on_worker: Callable[[ChunkProgress], None] | None = None,
) -> RenderResult:
    """Render the clip ``source`` as chunks on ``workers`` Ray workers, or in this process
    (``workers`` None, with the network of ``dreamer`` when given), each in ``video.lanes``
    lanes (see the module doc).

    ``on_frame`` hears the whole render's progress (frames of the file finished, chunk
    overlaps counted once), ``on_worker`` each worker's (each lane's, in this process). The
    result is the file a single process would write: every frame once, at the source's
    rate, with its sound.
    """
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: must be at least 1")
    source, output = Path(source), Path(output)
    if is_pattern(output):
        raise UserError(
            f"--workers writes video files; frames ({output.name}) are rendered without it"
        )
    reads = (("input", source), *cfg.reads())
    output = check_render_output(output, reads, overwrite, resume, restart)
    say = on_stage or (lambda text: None)
    plan, encoding, _ = prepare_clip(cfg, source, output, say)
    info = plan.info
    metadata = run_metadata(
        cfg, source, first_frame=plan.first, size=list(plan.size), fps=str(info.fps)
    )
    if resume:
        job = Job(output, {}, plan.size, info.fps, 1, metadata, encoding)
        if (complete := finished_before(job)) is not None:
            return complete
    say(f"{info.width}x{info.height} at {float(info.fps):.3f} fps; finding scene cuts")
    plan, cuts = scouted(plan, cfg.video.scene_cut)
    step = plan_step(cfg, source, plan, on_stage)
    suffixes = {name: part_suffix(encoding, name) for name in PARTS}
    store = ChunkStore(
        output, chunk_identity(cfg, source, plan), planned(cfg, plan, cuts, workers), resume,
        restart, suffixes, cfg.video.lanes,
    )  # fmt: skip
    if store.lanes != cfg.video.lanes:
        say(
            f"the render was planned with {store.lanes} lane(s): its chunks are dreamed "
            f"{store.lanes} at a time, as planned, so it matches an uninterrupted render"
        )
    finished = False
    try:
        waves = store.waves()
        # a worker without a wave only costs
        workers = None if workers is None else min(workers, max(len(waves), 1))
        say(_summary(store, cuts, plan, workers))
        progress = _Progress(store, encoding, info.fps, plan.expected, on_frame, on_worker)
        t0 = time.perf_counter()
        jobs = [[ChunkJob(cfg, c, plan.size, encoding, _steps(step, c)) for c in w] for w in waves]
        if jobs and workers is None:
            say(f"loading {cfg.dream.model}")
            loaded = dreamer_for(cfg.dream, dreamer)
            for wave in jobs:
                render_lanes(wave, source, loaded, len(wave), progress.landed, progress.lane)
        elif jobs:
            from dreamvideo.scale.cluster import connected, run_chunks

            with connected(address) as ray:
                store.notes += run_chunks(
                    ray, cfg, source, jobs, workers, gpus_per_worker, progress.landed,
                    progress.heard, key=str(output.resolve()),
                )  # fmt: skip
        blend_seams(store, store.chunks, encoding, info.fps)
        seconds = time.perf_counter() - t0
        say(f"joining {len(store.chunks)} chunk(s) with the sound")
        frames = _join(store, output, cfg, plan, metadata, encoding)
        finished = True
    finally:
        store.close(finished)
    rendered = sum(c.rendered for wave in waves for c in wave)
    return RenderResult(
        frames,
        progress.kept,
        seconds,
        seconds / max(rendered, 1),
        len(cuts),
        plan.size,
        info.fps,
        tuple(store.notes),
    )


def scouted(plan: ClipPlan, scene_cut: float) -> tuple[ClipPlan, list[int]]:
    """``plan`` ending where the clip really ends (frames decoded: exact, where headers are
    not), and its scene cuts (:func:`scout`)."""
    cuts, count = scout(plan, scene_cut)
    if count <= 0:
        raise UserError(f"no frames to render in {plan.info.path} (is video.start past its end?)")
    return replace(plan, last=plan.first + count), cuts


def chunk_identity(cfg: Config, source: Path, plan: ClipPlan) -> dict[str, Any]:
    """What a resume must find unchanged: the settings, the source, the range, the size."""
    return {
        "config": cfg.identity(),
        **file_fingerprint(source, plan.info.files),
        "first": plan.first,
        "last": plan.last,
        "size": list(plan.size),
    }


def planned(cfg: Config, plan: ClipPlan, cuts: list[int], workers: int | None) -> list[Chunk]:
    """The chunks of a new render: of ``video.chunk_seconds``, or shorter, so that every
    lane of every worker gets a share, ending at scene cuts where there are some."""
    assert plan.last is not None
    shares = (workers or 1) * cfg.video.lanes
    chunk_frames = max(1, round(cfg.video.chunk_seconds * float(plan.info.fps)))
    chunk_frames = min(chunk_frames, math.ceil((plan.last - plan.first) / shares))
    return plan_chunks(plan.first, plan.last, cuts, chunk_frames, cfg.video.chunk_overlap)


def _summary(store: ChunkStore, cuts: list[int], plan: ClipPlan, workers: int | None) -> str:
    assert plan.last is not None
    on = "in this process" if workers is None else f"on {workers} worker(s)"
    chunks = store.chunks
    return (
        f"{len(chunks)} chunk(s) of up to {max(c.end - c.start for c in chunks)} frames "
        f"({len(cuts)} scene cut(s)), {len(store.done_chunks())} already done; "
        f"{plan.last - plan.first} frames at {plan.size[0]}x{plan.size[1]}, {on}"
        + (f", {store.lanes} lanes in lockstep" if store.lanes > 1 else "")
    )


class _Progress:
    """A chunked render's bookkeeping as chunks land and workers (or lanes) report: each
    landed chunk is kept in the store and its seams blended; the whole render's progress
    counts chunk overlaps once."""

    def __init__(
        self, store: ChunkStore, encoding: Encoding, fps: Fraction, expected: int,
        on_frame: OnFrame | None, on_worker: Callable[[ChunkProgress], None] | None,
    ) -> None:  # fmt: skip
        self.store, self.encoding, self.fps, self.expected = store, encoding, fps, expected
        self.on_frame, self.on_worker = on_frame, on_worker
        self.kept = sum(c.end - c.start for c in store.chunks if chunk_key(c) in store.done)
        self.done = self.kept  # frames of the file finished
        self.live: dict[int, float] = {}  # chunk -> frames of it dreamed so far

    def landed(self, result: ChunkResult) -> None:
        chunk = self.store.chunks[result.index]
        if chunk_key(chunk) in self.store.done:  # dreamed again for its wave: kept as it was
            return
        self.store.add(chunk_key(chunk), {"head": result.head, "main": result.main,
                                          "tail": result.tail})  # fmt: skip
        blend_seams(self.store, self.store.chunks, self.encoding, self.fps)
        self.done += chunk.end - chunk.start
        self.live.pop(chunk.index, None)
        if self.on_frame is not None:
            self.on_frame(FrameReport(chunk.end - 1, self.done, self.expected, False, 1.0))

    def heard(self, p: Any, pid: int, worker: int | None = None) -> None:
        chunk = self.store.chunks[p.chunk]
        if chunk_key(chunk) not in self.store.done:
            self.live[p.chunk] = p.done * (chunk.end - chunk.start) / max(p.total, 1)
        if self.on_worker is not None:
            slot, node = (p.worker, p.node) if worker is None else (worker, "")
            gpus, device = getattr(p, "gpus", ""), getattr(p, "device", "")
            self.on_worker(ChunkProgress(slot, p.chunk, p.done, p.total, p.fps, node, pid,
                                         gpus, device))  # fmt: skip
        if self.on_frame is not None:
            done = self.done + round(sum(self.live.values()))
            self.on_frame(FrameReport(chunk.start, done, self.expected, False, 1.0))

    def lane(self, p: LaneProgress) -> None:
        """A lane of this process reports."""
        self.heard(p, os.getpid(), p.lane)


def _join(
    store: ChunkStore, output: Path, cfg: Config, plan: ClipPlan, metadata: dict[str, Any],
    encoding: Encoding,
) -> int:  # fmt: skip
    """The chunks and their seams joined, in order, with the sound: the frames written."""
    assert plan.last is not None
    segments = []
    for chunk in store.chunks:
        if chunk.lead:
            segments.append(store.file(seam_key(chunk), "main"))
        segments.append(store.file(chunk_key(chunk), "main"))
    frames = plan.last - plan.first
    fps = plan.info.fps
    store.notes += join_segments(
        segments,
        output,
        frames,
        clip_sound(cfg, plan.info, plan) if encoding.sound else None,
        frames / float(fps),
        {**metadata, "frames": frames},
        encoding.final,
        fps,
    )
    return frames


def render_clip(
    cfg: Config, source: str | Path, output: str | Path, *, workers: int | None = None, **kw: Any
) -> RenderResult:
    """The clip ``source`` rendered in one process
    (:func:`dreamvideo.render.clip.render_video`), or as chunks when ``workers`` or
    ``video.lanes`` ask for them (:func:`render_video_chunked`); ``kw``: the chosen
    render's own options. A resume goes on the way the unfinished render was started,
    whatever ``workers`` and ``video.lanes`` say now (said once)."""
    chunked = workers is not None or cfg.video.lanes > 1
    if kw.get("resume"):
        parts = parts_dir(output)
        was = (parts / CHUNKED).is_file() or (None if not (parts / "run.json").is_file() else False)
        if was is not None and was != chunked and kw.get("on_stage") is not None:
            kw["on_stage"](
                "the unfinished render was made in chunks: it goes on in chunks"
                if was
                else "the unfinished render was made in one process: it goes on so "
                "(--workers and --lanes apply to new renders)"
            )
        chunked = chunked if was is None else was
    if not chunked:
        kw.pop("on_worker", None)
        return render_video(cfg, source, output, **kw)
    if kw.pop("preview", None) is not None:
        raise UserError(
            "--preview works without --workers and --lanes (chunks render out of order)"
        )
    return render_video_chunked(cfg, source, output, workers=workers, **kw)


def _steps(step: Any, chunk: Chunk) -> tuple[float, ...] | None:
    """Each rendered frame's scheduled touch-up step, computed here so workers need no audio
    analysis."""
    if step is None:
        return None
    return tuple(step.at_index(i) for i in range(chunk.first, chunk.end))
