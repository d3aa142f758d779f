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
from dreamvideo.decode import VideoInfo, exact_fps, probe_video, read_frames, read_image
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
from dreamvideo.schedule import Schedule, parse_schedule
from dreamvideo.zoom import Motion, color_start, cover, feedback_step, loop_blend, noise_start

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


def to_uint8_device(img: torch.Tensor) -> torch.Tensor:
    """``(1,3,H,W)`` float in ``[0,1]`` -> ``(H,W,3)`` uint8, still on its device."""
    return img[0].mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0) \
        .contiguous()


@dataclass
class HostFrame:
    """A frame on its way to the host; :meth:`numpy` waits for the copy (CUDA) if needed."""

    data: torch.Tensor | np.ndarray
    event: torch.cuda.Event | None = None

    def numpy(self) -> np.ndarray:
        if self.event is not None:
            self.event.synchronize()
        return self.data.numpy() if isinstance(self.data, torch.Tensor) else self.data


@dataclass
class Uploaded:
    """Arrays copied to the device on a side stream; :meth:`DeviceIO.ready` waits for them."""

    tensors: dict[str, torch.Tensor]
    event: torch.cuda.Event | None = None


class DeviceIO:
    """Host <-> device copies that overlap with the ascent on CUDA, plain views on the CPU.

    Uploads run on a side stream from pinned memory (the reader thread calls :meth:`upload`
    for frame t+1 while frame t is dreamed); downloads go to pinned memory without blocking
    and the writer thread waits for them. On the CPU every call is a no-op wrapper.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def upload(self, arrays: dict[str, np.ndarray]) -> Uploaded:
        if self.stream is None:
            return Uploaded({k: torch.from_numpy(np.ascontiguousarray(v))
                             for k, v in arrays.items()})
        with torch.cuda.stream(self.stream):
            tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).pin_memory()
                       .to(self.device, non_blocking=True) for k, v in arrays.items()}
            event = torch.cuda.Event()
            event.record(self.stream)
        return Uploaded(tensors, event)

    def ready(self, up: Uploaded) -> dict[str, torch.Tensor]:
        if up.event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(up.event)
            for t in up.tensors.values():
                t.record_stream(current)  # freed only after the ascent has used it
        return up.tensors

    def download(self, t: torch.Tensor) -> HostFrame:
        if self.stream is None:
            return HostFrame(t.numpy())
        host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        host.copy_(t, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return HostFrame(host, event)


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
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # octave shapes repeat every frame
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
                 progress: Progress | None = None, step_map: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """Dream ``(1,3,H,W)`` float ``[0,1]``; the jitter sequence restarts from ``seed``."""
        gen = torch.Generator().manual_seed(self.seed)
        step = (lambda: progress(1)) if progress else None
        return dream(img, self.net, self.objective, params or self.params, gen,
                     autocast=self.autocast, step_map=step_map, on_step=step)

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

    index: int  # source frame index (clips) or frame number (zooms)
    done: int  # frames finished in this render, resumed ones included
    expected: int  # frames expected in all (estimate)
    fresh: bool  # dreamed from scratch (first frame or scene cut)
    coverage: float  # share of pixels carried over from the previous frame


@dataclass(frozen=True)
class RenderResult:
    frames: int  # frames in the finished file
    resumed_from: int  # frames that were already done when this run started
    seconds: float  # wall time of this run
    seconds_per_frame: float  # for the frames dreamed in this run
    scene_cuts: int
    size: tuple[int, int]
    fps: Fraction


@dataclass(frozen=True)
class _Frame:
    """One dreamed frame on its way to the encoder."""

    image: HostFrame | None  # (H,W,3) uint8 to write; None = kept for later (a loop's head)
    state: dict[str, np.ndarray | torch.Tensor]  # what a resume needs to go on after this
    report: FrameReport


def _write(render: SegmentedRender, frame: HostFrame, state: dict[str, Any]) -> None:
    render.write(frame.numpy(), state)


def _stream(render: SegmentedRender, frames: Iterator[_Frame], *, preview: Path | None,
            on_frame: Callable[[FrameReport], None] | None,
            audio_source: Path | None = None, audio_start: float = 0.0,
            metadata: dict[str, Any] | None = None) -> tuple[int, float]:
    """Encode ``frames`` on a writer thread while the caller's generator dreams the next.

    The preview picture is refreshed at most once a second. On any error or Ctrl-C the open
    segment is dropped and committed ones stay for ``--resume``. Returns (frames dreamed in
    this run, their seconds).
    """
    sink, last_preview, state, count = Sink(), 0.0, {}, 0
    t0 = time.perf_counter()
    try:
        for f in frames:
            state, count = f.state, count + 1
            if f.image is not None:
                sink.submit(_write, render, f.image, f.state)
                if preview is not None and time.monotonic() - last_preview > 1.0:
                    sink.submit(lambda p, im: write_image(p, im.numpy()), preview, f.image)
                    last_preview = time.monotonic()
            if on_frame is not None:
                on_frame(f.report)
        seconds = time.perf_counter() - t0
        sink.submit(render.finish, state, audio_source, audio_start, metadata)
        sink.drain()
    except BaseException:
        sink.stop()
        render.abort()
        raise
    finally:
        frames.close()  # type: ignore[attr-defined]
    return count, seconds


def _render(output: Path, fingerprint: dict[str, Any], size: tuple[int, int], fps: Fraction,
            cfg: Config, every: int, resume: bool, restart: bool) -> SegmentedRender:
    codec = codec_args(*size, cfg.encode.crf, cfg.encode.lossless, cfg.encode.preset)
    return SegmentedRender(output, {"config": cfg.to_dict(), **fingerprint}, size, fps, codec,
                           every, resume, restart)


def _file_fingerprint(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"source": str(path.resolve()), "source_bytes": stat.st_size,
            "source_mtime": stat.st_mtime}


def render_video(cfg: Config, source: str | Path, output: str | Path, *, resume: bool = False,
                 restart: bool = False, preview: str | Path | None = None,
                 on_frame: Callable[[FrameReport], None] | None = None) -> RenderResult:
    """Dream the clip ``source`` into ``output``, frame by frame, steadily.

    Frame 0 (and every scene cut) gets the full dream; each later frame starts from itself
    plus the previous dream's residual warped along the optical flow (where the occlusion
    mask allows) and gets the lighter ``video.next_*`` ascent. Decoding and flow run a few
    frames ahead on a reader thread, encoding on a writer thread. Frames are committed to
    ``output.parts/`` every ``video.checkpoint_every`` frames; ``resume`` continues there.
    """
    source = Path(source)
    output = check_video_output(output)
    preview = check_image_output(preview) if preview is not None else None
    info = probe_video(source)
    plan = plan_clip(info, cfg.video)
    dreamer = Dreamer.from_config(cfg.dream)
    flow_fn = flow_function(cfg.video, dreamer.device)
    later = replace(dreamer.params, octaves=cfg.video.next_octaves,
                    iterations=cfg.video.next_iterations)
    render = _render(output, {**_file_fingerprint(source), "first": plan.first,
                              "last": plan.last, "size": list(plan.size)},
                     plan.size, info.fps, cfg, cfg.video.checkpoint_every, resume, restart)
    resumed_from, cuts = render.done, 0

    io = DeviceIO(dreamer.device)

    def uploaded(prev: np.ndarray | None, first: int
                 ) -> Iterator[tuple[int, np.ndarray, Track | None, Uploaded]]:
        """Reader thread: decode, flow, and the copy to the device for the next frames."""
        for index, frame, tr in tracked_frames(source, plan, first, flow_fn,
                                               cfg.video.occlusion, prev):
            arrays = {"frame": frame} if tr is None else {"frame": frame, "flow": tr.flow,
                                                          "mask": tr.mask}
            yield index, frame, tr, io.upload(arrays)

    def dreamed() -> Iterator[_Frame]:
        nonlocal cuts
        state = render.state or {}
        prev_frame = state.get("prev_source")  # (H,W,3) uint8
        prev_dream = (torch.from_numpy(state["prev_dream"]).to(dreamer.device)
                      if "prev_dream" in state else None)  # (1,3,H,W) float
        prev_source = to_tensor(prev_frame, dreamer.device) if prev_frame is not None else None
        # mean |dream - source| of the shot's full dream, and the carried share allowed now
        target, cap = (torch.as_tensor(state.get(k, 0.0), device=dreamer.device)
                       for k in ("target", "cap"))
        done = render.done
        frames = prefetch(uploaded(prev_frame, plan.first + done))
        try:
            for index, frame, tr, up in frames:
                t = io.ready(up)
                cur = t["frame"].permute(2, 0, 1)[None].float().div_(255.0)
                fresh = tr is None or prev_dream is None or tr.coverage < cfg.video.scene_cut
                step_map = None
                if fresh:
                    init, params = cur, dreamer.params
                    cuts += tr is not None
                else:
                    assert prev_source is not None and prev_dream is not None
                    init = carry_residual(cur, prev_dream, prev_source, t["flow"], t["mask"],
                                          cfg.video.blend,
                                          cap if cfg.video.hold_strength else None)
                    params = later
                    # carried-over pixels get a gentler touch-up than newly revealed ones
                    step_map = 1.0 - (1.0 - cfg.video.tracked_step) * t["mask"][None, None]
                prev_dream, prev_source = dreamer(init, params, step_map=step_map), cur
                now = (prev_dream - cur).abs().mean()
                if fresh:  # the full dream sets the strength the shot keeps
                    target, cap = now, now
                else:  # steer the carried share so touch-up and all end at that strength
                    cap = cap * target / (now + 1e-8)
                done += 1
                yield _Frame(io.download(to_uint8_device(prev_dream)),
                             {"prev_source": frame, "prev_dream": prev_dream,
                              "target": target, "cap": cap},
                             FrameReport(index, done, max(plan.expected, done), fresh,
                                         1.0 if tr is None else tr.coverage))
        finally:
            frames.close()

    count, seconds = _stream(
        render, dreamed(), preview=preview, on_frame=on_frame,
        audio_source=source if cfg.encode.audio and info.has_audio else None,
        audio_start=plan.first / float(info.fps),
        metadata=run_metadata(cfg, source, first_frame=plan.first, size=list(plan.size),
                              fps=str(info.fps)))
    return RenderResult(render.done, resumed_from, seconds, seconds / max(count, 1), cuts,
                        plan.size, info.fps)


# --------------------------------------------------------------------------- zoom loops

@dataclass(frozen=True)
class ZoomPlan:
    """Frame counts and schedules of a zoom animation."""

    fps: Fraction
    frames: int  # frames in the file
    loop_frames: int  # extra frames rendered to cross-fade the end into the start
    motion: tuple[Schedule, Schedule, Schedule, Schedule]  # zoom, rotate, pan_x, pan_y
    iterations: Schedule
    step: Schedule | None
    layers: Schedule  # objective texts

    @property
    def rendered(self) -> int:
        return self.frames + self.loop_frames

    def motion_at(self, t: int) -> Motion:
        z, r, px, py = (s.value(t, float(self.fps)) for s in self.motion)
        return Motion(z, r, px, py).per_frame(float(self.fps))


def plan_zoom(cfg: Config) -> ZoomPlan:
    z = cfg.zoom
    fps = exact_fps(z.fps)
    frames = max(1, round(z.seconds * fps))
    loop = 0
    if z.loop:
        loop = min(z.loop_frames or max(1, round(fps)), frames - 1)
        if loop < 1:
            raise UserError("zoom.loop needs at least 2 frames (raise zoom.seconds)")

    def sched(key: str, numbers: bool = True) -> Schedule:
        value = getattr(z, key) if key != "layers" else (z.layers or cfg.dream.layers)
        return parse_schedule(value, f"zoom.{key}", numbers, z.interpolation)

    return ZoomPlan(fps, frames, loop, (sched("zoom"), sched("rotate"), sched("pan_x"),
                                        sched("pan_y")),
                    sched("iterations"), sched("step") if z.step is not None else None,
                    sched("layers", numbers=False))


def _hex_color(text: str) -> tuple[int, int, int]:
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


def render_zoom(cfg: Config, image: str | Path | None, output: str | Path, *,
                resume: bool = False, restart: bool = False, preview: str | Path | None = None,
                on_frame: Callable[[FrameReport], None] | None = None) -> RenderResult:
    """Render an infinite-dream animation: each frame is the last one moved, then dreamed.

    Starts from ``image`` (scaled to cover the frame) or from noise / a flat colour. Frame 0
    gets the full dream; later frames the ``zoom`` section's lighter, keyframed ascent and
    motion. With ``zoom.loop`` the end cross-fades into the start (see
    :func:`dreamvideo.zoom.loop_blend`). Resumable like clips.
    """
    output = check_video_output(output)
    preview = check_image_output(preview) if preview is not None else None
    z, plan = cfg.zoom, plan_zoom(cfg)
    size = (z.width, z.height)
    dreamer = Dreamer.from_config(cfg.dream)
    objectives = {text: dreamer.parse(text) for text in plan.layers.values()}
    layers = frozenset().union(*(o.layers for o in objectives.values()))
    dreamer = replace(dreamer, net=dreamer.full.truncated(layers))
    if image is not None:
        start = cover(read_image(image), size)
        fingerprint = _file_fingerprint(Path(image))
    else:
        start = (noise_start(size, cfg.dream.seed) if z.start == "noise"
                 else color_start(size, _hex_color(z.color)))
        fingerprint = {"source": None}
    render = _render(output, {**fingerprint, "size": list(size)}, size, plan.fps, cfg,
                     z.checkpoint_every, resume, restart)
    resumed_from = render.done
    center = (z.center_x, z.center_y)

    def objective_at(t: int) -> Objective:
        return Objective.sum(w * objectives[text] if w != 1.0 else objectives[text]
                             for text, w in plan.layers.weights(t, float(plan.fps)))

    def dreamed() -> Iterator[_Frame]:
        state = render.state or {}
        t = int(state["next"]) if "next" in state else 0
        prev = state.get("prev")
        head = state.get("head", np.zeros((plan.loop_frames, size[1], size[0], 3), np.uint8))
        while t < plan.rendered:
            if t == 0:
                x, params = start, dreamer.params
            else:
                assert prev is not None
                x = feedback_step(prev, plan.motion_at(t), center)
                params = replace(dreamer.params, octaves=z.octaves,
                                 iterations=round(plan.iterations.value(t, float(plan.fps))))
                if plan.step is not None:
                    params = replace(params, step=plan.step.value(t, float(plan.fps)))
            one = replace(dreamer, objective=objective_at(t))
            out = one(to_tensor(x, dreamer.device), params)
            prev, frame = to_float(out), to_uint8(out)
            image_out: np.ndarray | None = frame
            if t < plan.loop_frames:
                head[t], image_out = frame, None  # written blended at the end
            elif t >= plan.frames:
                i = t - plan.frames
                image_out = np.round(255 * loop_blend(prev, head[i] / 255.0, i,
                                                      plan.loop_frames)).astype(np.uint8)
            t += 1
            state = {"next": np.int64(t), "prev": prev}
            if plan.loop_frames:
                state["head"] = head
            yield _Frame(None if image_out is None else HostFrame(image_out), state,
                         FrameReport(t - 1, t, plan.rendered, t == 1, 1.0))

    count, seconds = _stream(render, dreamed(), preview=preview, on_frame=on_frame,
                             metadata=run_metadata(cfg, image, size=list(size),
                                                   fps=str(plan.fps)))
    return RenderResult(render.done, resumed_from, seconds, seconds / max(count, 1), 0, size,
                        plan.fps)
