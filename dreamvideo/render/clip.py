"""Clip renders: plan the frames, decode and track them ahead on a reader thread, step the
dream frame by frame (:mod:`dreamvideo.motion.clip`), encode behind
(:mod:`dreamvideo.render.loop`)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dreamvideo.config import Config, VideoConfig, check_scheduled
from dreamvideo.engine.ascent import AscentParams
from dreamvideo.engine.device import DeviceIO, Uploaded, to_frame_device
from dreamvideo.engine.dreamer import Dreamer
from dreamvideo.engine.masks import FrameMasks
from dreamvideo.engine.models import load_raft
from dreamvideo.errors import UserError
from dreamvideo.masks import reads_alpha
from dreamvideo.media.audio import load_envelopes
from dreamvideo.media.checkpoint import State
from dreamvideo.media.codecs import Encoding
from dreamvideo.media.ffmpeg import Sound
from dreamvideo.media.frames import probe_video, read_frames
from dreamvideo.media.images import check_preview
from dreamvideo.media.mattes import Mattes, mattes_for
from dreamvideo.media.probe import VideoInfo
from dreamvideo.motion.clip import Carry, ClipSteps, Tracked, step_clip
from dreamvideo.motion.envelopes import Envelopes
from dreamvideo.motion.flow import MIN_FLOW_SIDE, FlowFn, Track, make_flow, per_thread, track
from dreamvideo.motion.schedule import Schedule, parse_schedule
from dreamvideo.names import ENVELOPES
from dreamvideo.render.loop import (
    Frame,
    FrameReport,
    Job,
    OnFrame,
    OnStage,
    RenderResult,
    checking,
    file_fingerprint,
    run_metadata,
)
from dreamvideo.render.loop import run as run_render
from dreamvideo.render.network import dreamer_for
from dreamvideo.render.output import check_render_output, check_upscaled, encoding_for
from dreamvideo.render.threads import in_parallel, prefetch
from dreamvideo.text import path_text, plural


@dataclass(frozen=True)
class ClipPlan:
    """Which source frames are rendered, at what size, and read how."""

    info: VideoInfo
    first: int  # first source frame
    last: int | None  # one past the last source frame; None = until the clip ends
    size: tuple[int, int]  # render (width, height)
    alpha: bool = False  # read the source's alpha too (the output keeps it)
    matte_alpha: bool = False  # read the source's alpha for the mask (dream.mask alpha)
    deep: bool = False  # read more than 8 bits where the source has them
    hdr: str = "sdr"  # an HDR source read as SDR, or as its own signal ("keep")

    @property
    def expected(self) -> int:
        """Frames expected (the header's count may be off: progress only)."""
        count = self.info.frame_count
        end = count if self.last is None else min(self.last, count or self.last)
        return max(0, end - self.first)


def _even(x: float) -> int:
    return max(2, 2 * round(x / 2))


def plan_clip(info: VideoInfo, video: VideoConfig, upscale: float = 1.0) -> ClipPlan:
    """Frame range from ``start``/``end``/``max_frames``; size from ``width`` or ``scale``,
    times ``upscale`` (``dream.upscale``).

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
    if min(size) < MIN_FLOW_SIDE:
        raise UserError(
            f"{info.path}: frames of {size[0]}x{size[1]} are too small to follow "
            f"with optical flow; render at least {MIN_FLOW_SIDE} pixels on each "
            "side (video.width / video.scale)"
        )
    if upscale > 1.0:
        size = (_even(size[0] * upscale), _even(size[1] * upscale))
        check_upscaled(size, upscale, f"{path_text(info.path)}'s frames", "video.width")
    if video.end is not None and video.end <= video.start:
        raise UserError(f"video.end ({video.end} s) must come after video.start ({video.start} s)")
    first, last = _frame_at(video.start, info), _frame_at(video.end, info)
    if first is None:
        length = f" ({info.duration:.2f} s long)" if info.duration else ""
        raise UserError(
            f"video.start {video.start:g} s is past the end of {info.path}{length}; "
            "give a start inside the clip"
        )
    if video.max_frames is not None:
        last = first + video.max_frames if last is None else min(last, first + video.max_frames)
    return ClipPlan(info, first, last, size)


def clip_steps(video: VideoConfig, full: AscentParams, color_match: str = "none") -> ClipSteps:
    """What the clip stepper needs of the ``video`` section; ``full``: the first frame's
    ascent, of which the touch-ups keep all but the octaves and iterations. An upscaled
    clip's touch-ups run at the size asked for (``video.dream_scale`` of it), without the
    finer octaves: the first frame's fine detail is carried along the motion instead of being
    dreamed again every frame, which flickers more and costs twice the time."""
    later = replace(full, octaves=video.next_octaves, iterations=video.next_iterations)
    touch = video.dream_scale / full.upscale if full.upscale > 1.0 else None
    return ClipSteps(
        replace(later, upscale=1.0),
        video.blend,
        video.tracked_step,
        video.hold_strength,
        video.scene_cut,
        color_match,
        video.dream_scale,
        video.stride,
        video.temporal,
        video.hold_gain,
        video.memory,
        touch,
    )


def _frame_at(seconds: float | None, info: VideoInfo) -> int | None:
    """The source frame at ``seconds``; ``None`` for no time or one past the clip's end."""
    if seconds is None:
        return None
    frame = seconds * float(info.fps)  # a finite float: the config refuses inf and nan
    if (info.duration is not None and seconds >= info.duration) or frame > 2**53:
        return None
    return round(frame)


def flow_function(video: VideoConfig, device: torch.device) -> FlowFn:
    """``video.flow`` (RAFT's weights loaded once), with an estimator of its own for each
    thread that finds flows (:func:`flow_workers`)."""
    raft = load_raft(video.flow_weights, device) if video.flow == "raft" else None
    return per_thread(lambda: make_flow(video.flow, video.flow_preset, raft, device))


def flow_workers(video: VideoConfig) -> int:
    """Threads finding the motion ahead: ``video.flow_workers``, or half the cores (at most
    8: the flow of a frame costs a few milliseconds at 720p, and a handful keep up)."""
    return video.flow_workers or max(1, min(8, (os.cpu_count() or 2) // 2))


def tracked_frames(
    plan: ClipPlan,
    first: int,
    flow_fn: FlowFn,
    occlusion: bool,
    prev: np.ndarray | None,
    flow_scale: float = 1.0,
    workers: int = 1,
) -> Iterator[tuple[int, np.ndarray, np.ndarray | None, Track | None]]:
    """``(index, RGB frame, its alpha or None, how it follows the previous frame)``, read as
    ``plan`` says; ``prev`` is the RGB of frame ``first - 1``. The frames are decoded in
    turn and their flows found on ``workers`` threads at once."""
    alpha = plan.alpha or plan.matte_alpha
    read = read_frames(
        plan.info, first, plan.last, plan.size, alpha=alpha, deep=plan.deep, hdr=plan.hdr
    )

    def pairs() -> Iterator[tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]]:
        before = prev
        for index, frame in read:
            rgb = np.ascontiguousarray(frame[..., :3])
            alpha = np.ascontiguousarray(frame[..., 3]) if frame.shape[2] == 4 else None
            yield index, rgb, alpha, before
            before = rgb

    def followed(pair):
        index, rgb, alpha, before = pair
        tr = track(before, rgb, flow_fn, occlusion, flow_scale) if before is not None else None
        return index, rgb, alpha, tr

    try:
        yield from in_parallel(followed, pairs(), workers)
    finally:
        read.close()


@dataclass(frozen=True)
class StepSchedule:
    """``video.step`` for every frame: keyframes or an expression, and the envelopes of the
    clip's own sound when the expression listens to it."""

    schedule: Schedule
    fps: float
    first: int  # source frame of t = 0
    audio: Envelopes | None  # indexed by source frame

    def envelopes(self, t: int) -> dict[str, float] | None:
        return self.audio.at(self.first + t) if self.audio is not None else None

    def at(self, t: int) -> float:
        return self.schedule.value(t, self.fps, self.envelopes(t))

    def at_index(self, index: int) -> float:
        """The step of source frame ``index``."""
        return self.at(index - self.first)


def plan_step(
    cfg: Config, source: Path, plan: ClipPlan, on_stage: OnStage | None = None
) -> StepSchedule | None:
    """Read ``video.step`` and, if it uses the sound, analyse the clip's soundtrack; every
    frame's value is checked here, before any frame is dreamed (``on_stage`` hears how far a
    long check has come)."""
    if cfg.video.step is None:
        return None
    schedule = parse_schedule(cfg.video.step, "video.step")
    audio = None
    if schedule.uses() & set(ENVELOPES):
        if not plan.info.has_audio:
            heard = ", ".join(sorted(schedule.uses() & set(ENVELOPES)))
            raise UserError(f"video.step listens to the sound ({heard}), but {source} has none")
        a = cfg.audio
        audio = load_envelopes(source, float(plan.info.fps), a.attack, a.release, a.beat_decay)
    steps = StepSchedule(schedule, float(plan.info.fps), plan.first, audio)
    schedule.check_frames(
        range(plan.expected),
        steps.fps,
        steps.envelopes,
        check_scheduled,
        checking(on_stage, plan.expected),
    )
    return steps


def clip_frames(
    dreamer: Dreamer,
    steps: ClipSteps,
    plan: ClipPlan,
    flow_fn: FlowFn,
    occlusion: bool,
    step: Callable[[int], float] | None = None,
    state: State | None = None,
    done: int = 0,
    flow_scale: float = 1.0,
    overlap: bool = True,
    dtype: str = "uint8",
    mattes: Mattes | None = None,
    flow_workers: int = 1,
) -> Iterator[Frame]:
    """The clip's frames, dreamed one by one, from ``done`` frames into the plan with the
    carry saved in ``state`` (``None``: from a full dream); ``step(index)``: the touch-up
    step of source frame ``index``, when scheduled; ``overlap``: decode and follow the next
    frames on a reader thread while this one is dreamed. Frames come out as ``dtype``, with
    the source's alpha where ``plan`` keeps it; ``mattes``: the mask and regions of each
    frame; ``flow_workers``: threads finding the flows of the frames ahead."""
    io = DeviceIO(dreamer.device)
    carry = Carry.from_arrays(state, dreamer.device) if state else None

    def uploaded() -> Iterator[tuple[int, np.ndarray, np.ndarray | None, Track | None, Uploaded]]:
        """Reader thread: decode, flow, and the copy to the device for the next frames."""
        prev = carry.prev_frame if carry is not None else None
        for index, frame, alpha, tr in tracked_frames(
            plan, plan.first + done, flow_fn, occlusion, prev, flow_scale, flow_workers
        ):
            arrays = (
                {"frame": frame}
                if tr is None
                else {"frame": frame, "flow": tr.flow, "occlusion": tr.mask}
            )
            if mattes is not None:
                arrays.update(mattes.at(index, frame, alpha))
            yield index, frame, alpha if plan.alpha else None, tr, io.upload(arrays)

    frames = prefetch(uploaded(), 3 if overlap else 0)
    try:
        for index, frame, alpha, tr, up in frames:
            t = io.ready(up)
            top = 65535.0 if frame.dtype == np.uint16 else 255.0
            cur = t["frame"].permute(2, 0, 1)[None].float().div_(top)
            tracked = None if tr is None else Tracked(t["flow"], t["occlusion"], tr.coverage)
            now = steps if step is None else steps.with_step(step(index))
            masks = FrameMasks.of(t) if mattes is not None else None
            out, carry, fresh = step_clip(dreamer, now, frame, cur, tracked, carry, masks)
            done += 1
            yield Frame(
                io.download(to_frame_device(out, dtype), alpha, dtype),
                carry.to_arrays(),
                FrameReport(
                    index,
                    done,
                    max(plan.expected, done),
                    fresh,
                    1.0 if tr is None else tr.coverage,
                    cut=fresh and tr is not None,
                ),
            )
    finally:
        frames.close()


HD_PIXELS = 1280 * 720 * 3 // 4  # frames this large are slow to dream at full size on a CPU


def hd_hint(size: tuple[int, int], device: torch.device, video: VideoConfig) -> str | None:
    """A one-line suggestion for HD frames (``size`` = (width, height)) dreamed at full size
    on a CPU, where dreaming at half size is 3x to 5x faster (benchmarks/bench_hd.py)."""
    if device.type != "cpu" or video.dream_scale < 1.0 or size[0] * size[1] < HD_PIXELS:
        return None
    return (
        f"{size[0]}x{size[1]} frames dreamed at full size on a CPU: --preset video-hd dreams "
        "at half size and follows the motion at half size (measured 3x faster at 1280 px, 5x "
        "at 1920 px)"
    )


def render_video(
    cfg: Config,
    source: str | Path,
    output: str | Path,
    *,
    dreamer: Dreamer | None = None,
    resume: bool = False,
    restart: bool = False,
    overwrite: bool = False,
    preview: str | Path | None = None,
    on_frame: OnFrame | None = None,
    on_stage: OnStage | None = None,
    overlap: bool = True,
) -> RenderResult:
    """Dream the clip ``source`` into ``output``, frame by frame, steadily.

    Frame 0 (and every scene cut) gets the full dream; later frames follow the motion (see
    :mod:`dreamvideo.motion.clip`). Decoding and flow run a few frames ahead on a reader thread,
    encoding on a writer thread. Frames are committed to ``output.parts/`` every
    ``video.checkpoint_every`` frames; ``resume`` continues there. ``dreamer``: an already
    loaded network to reuse (see :func:`dreamvideo.render.network.dreamer_for`).
    ``overlap`` False does the decoding, flow and encoding in turn on this thread (to
    measure what the threads gain).
    """
    source = Path(source)
    reads = (("input", source), *cfg.reads())
    output = check_render_output(output, reads, overwrite, resume, restart)
    if preview is not None:
        preview = check_preview(preview, (*reads, ("output", output)), overwrite)
    say = on_stage or (lambda text: None)
    plan, encoding, mattes = prepare_clip(cfg, source, output, say)
    info = plan.info
    if cfg.video.step is not None and not isinstance(cfg.video.step, float):
        say(f"scheduling video.step over {plan.expected} frames")
    step = plan_step(cfg, source, plan, on_stage)
    say(
        f"{info.width}x{info.height} at {float(info.fps):.3f} fps, about {plan.expected} "
        f"frames to dream at {plan.size[0]}x{plan.size[1]}; loading {cfg.dream.model}"
    )
    dreamer = dreamer_for(cfg.dream, dreamer)
    hint = hd_hint(plan.size, dreamer.device, cfg.video)
    if hint:
        say(hint)
    flow_fn = flow_function(cfg.video, dreamer.device)
    steps = clip_steps(cfg.video, dreamer.params, cfg.dream.color_match)
    job = Job(
        output,
        {
            **file_fingerprint(source, info.files),
            "first": plan.first,
            "last": plan.last,
            "size": list(plan.size),
        },
        plan.size,
        info.fps,
        cfg.video.checkpoint_every,
        run_metadata(cfg, source, first_frame=plan.first, size=list(plan.size), fps=str(info.fps)),
        encoding,
        clip_sound(cfg, info, plan),
        f"dreaming: the first frame gets the full dream "
        f"({plural(dreamer.steps(plan.size[1], plan.size[0]), 'ascent step')}), later frames "
        f"a touch-up ({plural(dreamer.steps(plan.size[1], plan.size[0], steps.later), 'step')})"
        + (f" on one frame in {steps.stride}" if steps.stride > 1 else ""),
        first_number=first_number(info, plan),
    )
    return run_render(
        cfg,
        job,
        lambda render: clip_frames(
            dreamer,
            steps,
            plan,
            flow_fn,
            cfg.video.occlusion,
            step.at_index if step is not None else None,
            render.state,
            render.done,
            cfg.video.flow_scale,
            overlap,
            encoding.dtype,
            mattes,
            flow_workers(cfg.video),
        ),
        resume=resume,
        restart=restart,
        preview=preview,
        on_frame=on_frame,
        on_stage=on_stage,
        overlap=overlap,
    )


def prepare_clip(
    cfg: Config, source: Path, output: Path, say: OnStage
) -> tuple[ClipPlan, Encoding, Mattes | None]:
    """Everything about a clip render that is known before its first frame: which frames at
    what size (the plan), how its file is encoded (keeping what the source holds where the
    output can: alpha, depth, HDR with its mastering metadata, sound), and its mattes, checked
    on the first frame; ``say`` hears what reading and writing do to the source."""
    info = probe_video(source, cfg.video.fps)
    plan = plan_clip(info, cfg.video, cfg.dream.upscale)
    s = info.stream
    encoding = encoding_for(
        cfg, output, plan.size, alpha=info.alpha, source_depth=info.depth, hdr=info.hdr,
        sound=info.has_audio, mastering=s.mastering if s else None, light=s.light if s else None,
    )  # fmt: skip
    plan = read_as(plan, encoding, cfg)
    mattes = clip_mattes(cfg, plan)
    check_mattes(mattes, plan)
    for note in (*info.notes(cfg.encode.hdr), *encoding.notes):
        say(f"{source.name}: {note}")
    return plan, encoding, mattes


def read_as(plan: ClipPlan, encoding: Encoding, cfg: Config) -> ClipPlan:
    """``plan`` reading what ``encoding`` keeps (alpha, more than 8 bits, HDR as it is, as
    ``encode.hdr`` says) and what the mask needs (the alpha)."""
    deep = encoding.deep or encoding.floating
    matte_alpha = reads_alpha(cfg.dream.mask, cfg.dream.regions)
    return replace(
        plan, alpha=encoding.alpha, matte_alpha=matte_alpha, deep=deep, hdr=cfg.encode.hdr
    )


def clip_mattes(cfg: Config, plan: ClipPlan) -> Mattes | None:
    """The mask and regions of ``dream`` for the frames of ``plan``; ``None`` without them."""
    d = cfg.dream
    return mattes_for(
        d.mask,
        d.regions,
        plan.size,
        invert=d.mask_invert,
        feather=d.mask_feather,
        needed=plan.last if plan.last is not None else plan.info.frame_count,
        alpha=plan.info.alpha,
        input=str(plan.info.path),
    )


def check_mattes(mattes: Mattes | None, plan: ClipPlan) -> None:
    """The mattes of the plan's first frame, checked before any frame is dreamed."""
    if mattes is None:
        return
    for index, frame in read_frames(
        plan.info, plan.first, plan.first + 1, plan.size, alpha=plan.matte_alpha
    ):
        alpha = frame[..., 3] if frame.shape[2] == 4 else None
        mattes.check(index, np.ascontiguousarray(frame[..., :3]), alpha)


def clip_sound(cfg: Config, info: VideoInfo, plan: ClipPlan) -> Sound | None:
    """The source's sound and subtitles from the plan's first frame, when they are kept:
    the sound heard with that frame (where the sound begins before the picture, that much
    later in the file)."""
    if not (cfg.encode.audio and info.has_audio):
        return None
    return Sound(info.path, info.start + plan.first / float(info.fps), info.subtitle_streams > 0)


def first_number(info: VideoInfo, plan: ClipPlan) -> int:
    """The number of the first frame written to a frame sequence: the source frame's own
    (a numbered frame folder's number, else its index in the clip)."""
    if info.files:
        m = re.search(r"(\d+)(?=\D*$)", info.files[plan.first].stem)
        if m:
            return int(m.group(1))
    return plan.first
