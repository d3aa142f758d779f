"""One chunk of a clip, rendered where a worker runs (no Ray here: :mod:`dreamvideo.scale.cluster`
calls it on the workers, tests call it directly).

The chunk is dreamed like any clip (:func:`dreamvideo.render.clip.clip_frames`) from a fresh
full dream at its first frame, and written as up to three files: its lead and its tail
losslessly (the driver cross-fades them with the neighbouring chunks, so they must come back
exact) and the frames between in the render's own codec, ready to be joined as they are
(see :func:`part_suffix`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dreamvideo.config import Config
from dreamvideo.engine.dreamer import Dreamer
from dreamvideo.media.codecs import Encoding, video_args
from dreamvideo.media.ffmpeg import VideoWriter
from dreamvideo.media.frames import probe_video
from dreamvideo.render.clip import (
    ClipPlan,
    clip_frames,
    clip_mattes,
    clip_steps,
    flow_function,
    flow_workers,
    read_as,
)
from dreamvideo.scale.chunks import Chunk


@dataclass(frozen=True)
class ChunkJob:
    """What a worker needs to render one chunk (plain data: it travels to other machines)."""

    cfg: Config
    chunk: Chunk
    size: tuple[int, int]  # render (width, height)
    encoding: Encoding  # of the output; the chunk's main part is written in it
    # touch-up step of each rendered frame (chunk.first ..), when video.step is scheduled
    steps: tuple[float, ...] | None = None


PARTS = ("head", "main", "tail")


def part_suffix(encoding: Encoding, name: str) -> str:
    """A chunk's lead and tail are exact (FFV1 in Matroska: they are cross-faded with the
    neighbours, so they must come back as dreamed, alpha and depth included); its main part
    is in the output's own codec, ready to be joined as it is."""
    return encoding.segment_suffix if name == "main" else ".mkv"


def part_args(encoding: Encoding, size: tuple[int, int], name: str) -> tuple[str, ...]:
    if name == "main":
        return encoding.args
    return tuple(video_args("ffv1", size, alpha=encoding.alpha, deep=encoding.deep))


@dataclass(frozen=True)
class ChunkResult:
    """The encoded parts of one chunk; empty bytes where the chunk has no lead or tail."""

    index: int
    head: bytes
    main: bytes
    tail: bytes
    seconds: float  # wall time on the worker, network load included
    worker: dict[str, str] = field(default_factory=dict)  # node, pid: where it ran


def render_chunk(
    job: ChunkJob,
    source: Path,
    dreamer: Dreamer,
    on_frame: Callable[[int], None] | None = None,
    scratch: Path | None = None,
) -> ChunkResult:
    """Dream ``job.chunk`` of ``source``; ``on_frame(done)`` after each frame. The parts are
    encoded in a folder under ``scratch`` (default: the temporary folder), removed after."""
    t0 = time.perf_counter()
    cfg, chunk, enc = job.cfg, job.chunk, job.encoding
    info = probe_video(source, cfg.video.fps)
    plan = read_as(ClipPlan(info, chunk.first, chunk.end, job.size), enc, cfg)
    steps = clip_steps(cfg.video, dreamer.params, cfg.dream.color_match)
    step = (lambda index: job.steps[index - chunk.first]) if job.steps is not None else None
    with tempfile.TemporaryDirectory(prefix="dreamvideo-chunk-", dir=scratch) as tmp:
        parts = {name: Path(tmp) / f"{name}{part_suffix(enc, name)}" for name in PARTS}
        counts = {"head": chunk.lead, "main": chunk.main[1] - chunk.main[0], "tail": chunk.tail}
        writers = {
            name: VideoWriter(
                parts[name],
                job.size,
                info.fps,
                part_args(enc, job.size, name),
                pix_fmt=enc.pix_fmt,
            )  # fmt: skip
            for name in PARTS
            if counts[name]
        }
        order = [name for name in ("head", "main", "tail") for _ in range(counts[name])]
        try:
            frames = clip_frames(
                dreamer,
                steps,
                plan,
                flow_function(cfg.video, dreamer.device),
                cfg.video.occlusion,
                step,
                flow_scale=cfg.video.flow_scale,
                dtype=enc.dtype,
                mattes=clip_mattes(cfg, plan),
                flow_workers=flow_workers(cfg.video),
            )
            done = 0
            for frame in frames:
                writers[order[done]].write(np.asarray(frame.image.numpy()))
                done += 1
                if on_frame is not None:
                    on_frame(done)
            for w in writers.values():
                w.close()
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        if done != chunk.rendered:
            raise RuntimeError(
                f"chunk {chunk.index}: {done} frames decoded where {chunk.rendered} were planned"
            )
        data = {n: parts[n].read_bytes() if n in writers else b"" for n in parts}
    return ChunkResult(
        chunk.index, data["head"], data["main"], data["tail"], time.perf_counter() - t0
    )
