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
    lanes = cfg.video.lanes
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
    job = Job(output, {}, plan.size, info.fps, 1, metadata, encoding)
    if resume and (complete := finished_before(job)) is not None:
        return complete
    say(f"{info.width}x{info.height} at {float(info.fps):.3f} fps; finding scene cuts")
    cuts, count = scout(plan, cfg.video.scene_cut)  # frames decoded: exact, where headers are not
    last = plan.first + count
    if last <= plan.first:
        raise UserError(f"no frames to render in {source} (is video.start past its end?)")
    plan = replace(plan, last=last)
    step = plan_step(cfg, source, plan, on_stage)
    identity = {
        "config": cfg.identity(),
        **file_fingerprint(source, info.files),
        "first": plan.first,
        "last": last,
        "size": list(plan.size),
    }
    # chunks of video.chunk_seconds, or shorter, so that every lane of every worker gets a share
    shares = (workers or 1) * lanes
    chunk_frames = max(1, round(cfg.video.chunk_seconds * float(info.fps)))
    chunk_frames = min(chunk_frames, math.ceil((last - plan.first) / shares))
    planned = plan_chunks(plan.first, last, cuts, chunk_frames, cfg.video.chunk_overlap)
    suffixes = {name: part_suffix(encoding, name) for name in PARTS}
    store = ChunkStore(output, identity, planned, resume, restart, suffixes, lanes)
    chunks, waves = store.chunks, store.waves()
    if store.lanes != lanes:
        say(
            f"the render was planned with {store.lanes} lane(s): its chunks are dreamed "
            f"{store.lanes} at a time, as planned, so it matches an uninterrupted render"
        )
    finished = False
    try:
        todo = [c for wave in waves for c in wave]
        kept = sum(c.end - c.start for c in chunks if chunk_key(c) in store.done)
        # a worker without a wave only costs
        workers = None if workers is None else min(workers, max(len(waves), 1))
        on = "in this process" if workers is None else f"on {workers} worker(s)"
        say(
            f"{len(chunks)} chunk(s) of up to {max(c.end - c.start for c in chunks)} frames "
            f"({len(cuts)} scene cut(s)), {len(store.done_chunks())} already done; "
            f"{last - plan.first} frames at {plan.size[0]}x{plan.size[1]}, {on}"
            + (f", {store.lanes} lanes in lockstep" if store.lanes > 1 else "")
        )
        t0, state = time.perf_counter(), {"done": kept, "live": {}}

        def landed(result: ChunkResult) -> None:
            chunk = chunks[result.index]
            if chunk_key(chunk) in store.done:  # dreamed again for its wave: kept as it was
                return
            store.add(chunk_key(chunk), {"head": result.head, "main": result.main,
                                         "tail": result.tail})  # fmt: skip
            blend_seams(store, chunks, encoding, info.fps)
            state["done"] += chunk.end - chunk.start
            state["live"].pop(chunk.index, None)
            if on_frame is not None:
                on_frame(FrameReport(chunk.end - 1, state["done"], plan.expected, False, 1.0))

        def heard(p: Any, pid: int, worker: int | None = None) -> None:
            chunk = chunks[p.chunk]
            if chunk_key(chunk) not in store.done:
                state["live"][p.chunk] = p.done * (chunk.end - chunk.start) / max(p.total, 1)
            if on_worker is not None:
                slot, node = (p.worker, p.node) if worker is None else (worker, "")
                on_worker(ChunkProgress(slot, p.chunk, p.done, p.total, p.fps, node, pid))
            if on_frame is not None:
                done = state["done"] + round(sum(state["live"].values()))
                on_frame(FrameReport(chunk.start, done, plan.expected, False, 1.0))

        jobs = [[ChunkJob(cfg, c, plan.size, encoding, _steps(step, c)) for c in w] for w in waves]
        if jobs and workers is None:
            say(f"loading {cfg.dream.model}")
            loaded = dreamer_for(cfg.dream, dreamer)

            def lane_heard(p: LaneProgress) -> None:
                heard(p, os.getpid(), p.lane)

            for wave in jobs:
                render_lanes(wave, source, loaded, len(wave), landed, lane_heard)
        elif jobs:
            from dreamvideo.scale.cluster import connected, run_chunks

            with connected(address) as ray:
                store.notes += run_chunks(
                    ray, cfg, source, jobs, workers, gpus_per_worker, landed, heard,
                    key=str(output.resolve()),
                )  # fmt: skip
        blend_seams(store, chunks, encoding, info.fps)
        seconds = time.perf_counter() - t0
        say(f"joining {len(chunks)} chunk(s) with the sound")
        segments = []
        for chunk in chunks:
            if chunk.lead:
                segments.append(store.file(seam_key(chunk), "main"))
            segments.append(store.file(chunk_key(chunk), "main"))
        frames = last - plan.first
        store.notes += join_segments(
            segments,
            output,
            frames,
            clip_sound(cfg, info, plan) if encoding.sound else None,
            frames / float(info.fps),
            {**metadata, "frames": frames},
            encoding.final,
            info.fps,
        )
        finished = True
    finally:
        store.close(finished)
    rendered = sum(c.rendered for c in todo)
    return RenderResult(
        frames,
        kept,
        seconds,
        seconds / max(rendered, 1),
        len(cuts),
        plan.size,
        info.fps,
        tuple(store.notes),
    )


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
