"""One chunk of a clip, rendered where a worker runs (no Ray here: :mod:`dreamvideo.scale.cluster`
calls it on the workers, tests call it directly).

The chunk is dreamed like any clip (:func:`dreamvideo.render.clip.clip_frames`) from a fresh
full dream at its first frame, and written as up to three files: its lead and its tail
losslessly (the driver cross-fades them with the neighbouring chunks, so they must come back
exact) and the frames between in the render's own codec, ready to be joined as they are.
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
from dreamvideo.media.ffmpeg import VideoWriter, codec_args
from dreamvideo.media.frames import probe_video
from dreamvideo.render.clip import ClipPlan, clip_frames, clip_steps, flow_function
from dreamvideo.scale.chunks import Chunk


@dataclass(frozen=True)
class ChunkJob:
    """What a worker needs to render one chunk (plain data: it travels to other machines)."""

    cfg: Config
    chunk: Chunk
    size: tuple[int, int]  # render (width, height)
    # touch-up step of each rendered frame (chunk.first ..), when video.step is scheduled
    steps: tuple[float, ...] | None = None


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
    cfg, chunk = job.cfg, job.chunk
    plan = ClipPlan(probe_video(source), chunk.first, chunk.end, job.size)
    steps = clip_steps(cfg.video, dreamer.params, cfg.dream.color_match)
    step = (lambda index: job.steps[index - chunk.first]) if job.steps is not None else None
    main_codec = codec_args(*job.size, cfg.encode.crf, cfg.encode.lossless, cfg.encode.preset)
    exact_codec = codec_args(*job.size, 0, True, "ultrafast")
    with tempfile.TemporaryDirectory(prefix="dreamvideo-chunk-", dir=scratch) as tmp:
        parts = {name: Path(tmp) / f"{name}.mp4" for name in ("head", "main", "tail")}
        counts = {"head": chunk.lead, "main": chunk.main[1] - chunk.main[0], "tail": chunk.tail}
        writers = {
            name: VideoWriter(parts[name], job.size, plan.info.fps, codec)
            for name, codec in (("head", exact_codec), ("main", main_codec), ("tail", exact_codec))
            if counts[name]
        }
        order = [name for name in ("head", "main", "tail") for _ in range(counts[name])]
        try:
            frames = clip_frames(
                dreamer,
                steps,
                source,
                plan,
                flow_function(cfg.video, dreamer.device),
                cfg.video.occlusion,
                step,
                flow_scale=cfg.video.flow_scale,
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
