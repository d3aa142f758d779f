"""Where I/O meets tensors: load the network once, then dream pictures, galleries and clips."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from dreamvideo import __version__
from dreamvideo.ascent import AscentParams, dream, resize, steps_for
from dreamvideo.checkpoint import SegmentedRender
from dreamvideo.config import Config, DreamConfig, VideoConfig
from dreamvideo.decode import VideoInfo, probe_video, read_frames, read_image
from dreamvideo.encode import check_image_output, check_video_output, codec_args, write_image
from dreamvideo.errors import UserError
from dreamvideo.flow import (
    FlowFn,
    Track,
    carry_residual,
    dis_flow,
    farneback_flow,
    raft_flow,
    track,
)
from dreamvideo.models import Backbone, load_backbone, load_raft
from dreamvideo.objectives import Objective, parse_objective

Progress = Callable[[int], None]  # called with how many ascent steps just finished


def pick_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; an unusable device is a :class:`UserError`."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device {spec!r}: CUDA is not available on this machine; "
                            "use --device cpu or --device auto")
        index = int(spec.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise UserError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s); "
                            f"use cuda:0..cuda:{torch.cuda.device_count() - 1}")
    return torch.device(spec)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The forward's autocast dtype: bf16 on CUDA by default (fp16 where bf16 is missing)."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(H,W,3)`` uint8 (0..255) or float32 (0..1) RGB -> ``(1,3,H,W)`` float32 in ``[0,1]``."""
    t = torch.from_numpy(np.ascontiguousarray(rgb)).to(device, non_blocking=True)
    t = t.permute(2, 0, 1)[None].float()
    return t.div_(255.0) if rgb.dtype == np.uint8 else t


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """``(1,3,H,W)`` float in ``[0,1]`` -> ``(H,W,3)`` uint8 RGB on the host."""
    return img[0].mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def to_float(img: torch.Tensor) -> np.ndarray:
    """``(1,3,H,W)`` float in ``[0,1]`` -> ``(H,W,3)`` float32 on the host."""
    return img[0].permute(1, 2, 0).float().cpu().numpy()


def resize_rgb(rgb: np.ndarray, width: int | None) -> np.ndarray:
    """Scale ``(H,W,3)`` uint8 to ``width`` pixels wide (aspect kept); ``None`` keeps it."""
    if not width or width == rgb.shape[1]:
        return rgb
    height = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
    t = resize(torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), (height, width))
    return t[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


@dataclass
class Dreamer:
    """A loaded network and an objective, ready to dream images on one device.

    ``net`` is ``full`` cut after the objective's deepest layer (the weights are shared).
    """

    full: Backbone
    channels: dict[str, int]  # layer -> channel count, for validating objectives
    guide: Callable[[str], torch.Tensor] | None  # layer -> (C, N) guide-picture features
    objective: Objective
    net: Backbone
    params: AscentParams
    device: torch.device
    autocast: torch.dtype | None
    seed: int

    @classmethod
    def from_config(cls, cfg: DreamConfig, allow_download: bool = True) -> Dreamer:
        device = pick_device(cfg.device)
        full = load_backbone(cfg.model, cfg.weights, device, allow_download=allow_download)
        full.use_channels_last()
        channels = {info.name: info.channels for info in full.layer_table()}
        guide = None
        if cfg.guide is not None:
            rgb = read_image(cfg.guide)
            small = to_tensor(resize_rgb(rgb, round(rgb.shape[1] * min(1, 512 / max(rgb.shape))
                                                    )), device)

            def guide(layer: str) -> torch.Tensor:
                with torch.no_grad():
                    return full(small, [layer])[layer][0].flatten(1).float()

        obj = parse_objective(cfg.layers, channels, guide)
        params = AscentParams(octaves=cfg.octaves, octave_scale=cfg.octave_scale,
                              iterations=cfg.iterations, step=cfg.step, jitter=cfg.jitter,
                              normalize=cfg.normalize, tile=cfg.tile)
        return cls(full, channels, guide, obj, full.truncated(obj.layers), params, device,
                   autocast_dtype(device, cfg.precision), cfg.seed)

    def parse(self, text: str) -> Objective:
        """An objective in text form, checked against this network's layers and channels."""
        return parse_objective(text, self.channels, self.guide)

    def with_objective(self, objective: Objective) -> Dreamer:
        """The same network and settings, maximizing ``objective`` instead."""
        return replace(self, objective=objective, net=self.full.truncated(objective.layers))

    def steps(self, height: int, width: int, params: AscentParams | None = None) -> int:
        return steps_for(height, width, params or self.params)

    def __call__(self, img: torch.Tensor, params: AscentParams | None = None,
                 progress: Progress | None = None) -> torch.Tensor:
        """Dream ``(1,3,H,W)`` float ``[0,1]``; the jitter sequence restarts from ``seed``."""
        gen = torch.Generator().manual_seed(self.seed)
        step = (lambda: progress(1)) if progress else None
        return dream(img, self.net, self.objective, params or self.params, gen,
                     autocast=self.autocast, on_step=step)

    def score(self, img: torch.Tensor) -> float:
        """The objective's value on ``img`` (one forward, no gradient)."""
        with torch.no_grad():
            return float(self.objective(self.net(img, self.objective.layers)).sum())


def run_metadata(cfg: Config, source: str | Path | None, **extra: Any) -> dict[str, Any]:
    """What goes into an output file so the render can be reproduced."""
    return {"dreamvideo": __version__, "source": str(source) if source else None,
            "config": cfg.to_dict(), **extra}


@dataclass(frozen=True)
class ImageResult:
    seconds: float
    objective_before: float
    objective_after: float
    size: tuple[int, int]  # (width, height)


def render_image(cfg: Config, source: str | Path, output: str | Path,
                 width: int | None = None, start: Callable[[int], Progress] | None = None
                 ) -> ImageResult:
    """Dream the picture ``source`` into ``output``.

    ``start(total_steps)`` is called once the work is known and returns the progress callback.
    """
    check_image_output(output)
    rgb = resize_rgb(read_image(source), width)
    dreamer = Dreamer.from_config(cfg.dream)
    t0 = time.perf_counter()
    x = to_tensor(rgb, dreamer.device)
    progress = start(dreamer.steps(*rgb.shape[:2])) if start else None
    out = dreamer(x, progress=progress)
    seconds = time.perf_counter() - t0
    write_image(output, to_uint8(out), run_metadata(cfg, source, width=width))
    return ImageResult(seconds, dreamer.score(x), dreamer.score(out), (rgb.shape[1], rgb.shape[0]))


def render_gallery(cfg: Config, source: str | Path, output: str | Path,
                   layers: Sequence[str] | None = None, size: int = 256, columns: int = 0,
                   start: Callable[[int], Progress] | None = None) -> list[str]:
    """Dream ``source`` once per layer (default: every layer) into a labelled contact sheet."""
    from dreamvideo.encode import contact_sheet

    check_image_output(output)
    rgb = read_image(source)
    rgb = resize_rgb(rgb, round(rgb.shape[1] * min(1.0, size / max(rgb.shape[:2]))))
    dreamer = Dreamer.from_config(cfg.dream)
    names = list(layers) if layers else dreamer.full.names
    objectives = [dreamer.parse(name) for name in names]  # every name checked before work
    x = to_tensor(rgb, dreamer.device)
    progress = start(dreamer.steps(*rgb.shape[:2]) * len(names)) if start else None
    tiles = [(name, to_uint8(dreamer.with_objective(obj)(x, progress=progress)))
             for name, obj in zip(names, objectives, strict=True)]
    write_image(output, contact_sheet(tiles, columns), run_metadata(cfg, source, layers=names))
    return names


# --------------------------------------------------------------------------- background work

T = TypeVar("T")
_END = object()


def prefetch(items: Iterator[T], depth: int = 3) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``depth`` items ahead (decode, flow).

    Errors raised by ``items`` come out here, in the caller's thread.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="dreamvideo-read") as pool:
        pending = deque(pool.submit(next, items, _END) for _ in range(depth))
        try:
            while True:
                item = pending.popleft().result()
                if item is _END:
                    return
                pending.append(pool.submit(next, items, _END))
                yield item  # type: ignore[misc]
        finally:
            for f in pending:
                f.cancel()


class Sink:
    """Runs calls in order on one background thread (encoding), at most ``depth`` queued.

    An error in the thread is raised by the next :meth:`submit` or by :meth:`drain`.
    """

    def __init__(self, depth: int = 4) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dreamvideo-write")
        self._pending: deque[Future[Any]] = deque()
        self._depth = depth

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._pending.append(self._pool.submit(fn, *args))
        while self._pending and (len(self._pending) > self._depth or self._pending[0].done()):
            self._pending.popleft().result()

    def drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def stop(self) -> None:
        """Drop queued calls and wait for the running one (after an error or Ctrl-C)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()


# --------------------------------------------------------------------------- clips

@dataclass(frozen=True)
class ClipPlan:
    """Which source frames are rendered, and at what size."""

    info: VideoInfo
    first: int  # first source frame
    last: int | None  # one past the last source frame; None = until the clip ends
    size: tuple[int, int]  # render (width, height)

    @property
    def expected(self) -> int:
        """Frames expected (the header's count may be off: progress only)."""
        count = self.info.frame_count
        end = count if self.last is None else min(self.last, count or self.last)
        return max(0, end - self.first)


def _even(x: float) -> int:
    return max(2, 2 * round(x / 2))


def plan_clip(info: VideoInfo, video: VideoConfig) -> ClipPlan:
    """Frame range from ``start``/``end``/``max_frames``; size from ``width`` or ``scale``.

    A chosen width gets an even height (yuv420p needs even sizes); the source's own size is
    kept as it is, odd or not.
    """
    w, h = info.width, info.height
    if video.width:
        size = (video.width, _even(h * video.width / w))
    elif video.scale != 1.0:
        size = (_even(w * video.scale), _even(h * video.scale))
    else:
        size = (w, h)
    first = round(video.start * info.fps)
    last = round(video.end * info.fps) if video.end is not None else None
    if last is not None and last <= first:
        raise UserError(f"video.end ({video.end} s) must come after video.start "
                        f"({video.start} s)")
    if video.max_frames is not None:
        last = first + video.max_frames if last is None else min(last, first + video.max_frames)
    return ClipPlan(info, first, last, size)


def flow_function(video: VideoConfig, device: torch.device) -> FlowFn:
    if video.flow == "dis":
        return dis_flow(video.flow_preset)
    if video.flow == "farneback":
        return farneback_flow()
    return raft_flow(load_raft(video.flow_weights, device), device)


def tracked_frames(source: Path, plan: ClipPlan, first: int, flow_fn: FlowFn, occlusion: bool,
                   prev: np.ndarray | None) -> Iterator[tuple[int, np.ndarray, Track | None]]:
    """``(index, frame, how it follows the previous frame)``; ``prev`` is frame ``first - 1``."""
    for index, frame in read_frames(source, first, plan.last, plan.size):
        yield index, frame, (track(prev, frame, flow_fn, occlusion) if prev is not None else None)
        prev = frame


@dataclass(frozen=True)
class FrameReport:
    """What the progress display shows after each frame."""

    index: int  # source frame index
    done: int  # frames finished in this render, resumed ones included
    expected: int  # frames expected in all (estimate)
    fresh: bool  # dreamed from scratch (first frame or scene cut)
    coverage: float  # share of pixels carried over from the previous frame


@dataclass(frozen=True)
class VideoResult:
    frames: int
    resumed_from: int
    seconds: float  # wall time of this run
    scene_cuts: int
    size: tuple[int, int]
    fps: Fraction


def _write_preview(path: Path, frame: np.ndarray) -> None:
    write_image(path, frame)


def render_video(cfg: Config, source: str | Path, output: str | Path, *, resume: bool = False,
                 restart: bool = False, preview: str | Path | None = None,
                 on_frame: Callable[[FrameReport], None] | None = None) -> VideoResult:
    """Dream the clip ``source`` into ``output``, frame by frame, steadily.

    Frame 0 (and every scene cut) gets the full dream; each later frame starts from itself
    plus the previous dream's residual warped along the optical flow (where the occlusion
    mask allows) and gets the lighter ``video.next_*`` ascent. Decoding and flow run a few
    frames ahead on a reader thread, encoding on a writer thread. Frames are committed to
    ``output.parts/`` every ``video.checkpoint_every`` frames; ``resume`` continues there.
    """
    source = Path(source)
    output = check_video_output(output)
    if preview is not None:
        preview = check_image_output(preview)
    info = probe_video(source)
    plan = plan_clip(info, cfg.video)
    dreamer = Dreamer.from_config(cfg.dream)
    flow_fn = flow_function(cfg.video, dreamer.device)
    later = replace(dreamer.params, octaves=cfg.video.next_octaves,
                    iterations=cfg.video.next_iterations)
    stat = source.stat()
    fingerprint = {"config": cfg.to_dict(), "source": str(source.resolve()),
                   "source_bytes": stat.st_size, "source_mtime": stat.st_mtime,
                   "first": plan.first, "last": plan.last, "size": list(plan.size)}
    render = SegmentedRender(output, fingerprint, plan.size, info.fps,
                             codec_args(*plan.size, cfg.encode.crf, cfg.encode.lossless,
                                        cfg.encode.preset),
                             cfg.video.checkpoint_every, resume, restart)
    resumed_from = render.done
    state = render.state or {}
    prev_source, prev_dream = state.get("prev_source"), state.get("prev_dream")
    frames = prefetch(tracked_frames(source, plan, plan.first + render.done, flow_fn,
                                     cfg.video.occlusion, prev_source))
    sink, t0, cuts, last_preview = Sink(), time.perf_counter(), 0, 0.0
    done = render.done
    try:
        for index, frame, tr in frames:
            cur = frame.astype(np.float32) / 255.0
            fresh = tr is None or prev_dream is None or tr.coverage < cfg.video.scene_cut
            if fresh:
                init, params = cur, dreamer.params
                cuts += tr is not None
            else:
                assert prev_source is not None and tr is not None
                init = carry_residual(cur, prev_dream, prev_source.astype(np.float32) / 255.0,
                                      tr, cfg.video.blend)
                params = later
            out = dreamer(to_tensor(init, dreamer.device), params)
            prev_source, prev_dream = frame, to_float(out)
            result = to_uint8(out)
            sink.submit(render.write, result, {"prev_source": prev_source,
                                               "prev_dream": prev_dream})
            if preview is not None and time.monotonic() - last_preview > 1.0:
                sink.submit(_write_preview, preview, result)
                last_preview = time.monotonic()
            done += 1
            if on_frame is not None:
                on_frame(FrameReport(index, done, max(plan.expected, done), fresh,
                                     1.0 if tr is None else tr.coverage))
        sink.submit(render.finish, {"prev_source": prev_source, "prev_dream": prev_dream},
                    source if cfg.encode.audio and info.has_audio else None,
                    plan.first / float(info.fps),
                    run_metadata(cfg, source, first_frame=plan.first, frames=done,
                                 size=list(plan.size), fps=str(info.fps)))
        sink.drain()
    except BaseException:
        sink.stop()
        render.abort()
        raise
    finally:
        frames.close()
    return VideoResult(done, resumed_from, time.perf_counter() - t0, cuts, plan.size, info.fps)
