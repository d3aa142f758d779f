"""Zoom renders: plan the keyframed animation, step it frame by frame
(:func:`dreamvideo.motion.zoom.step_zoom`) and encode it resumably
(:mod:`dreamvideo.render.loop`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from dreamvideo.config import Config, check_scheduled
from dreamvideo.engine.ascent import AscentParams
from dreamvideo.engine.device import HostFrame, to_tensor
from dreamvideo.engine.dreamer import Dreamer
from dreamvideo.engine.masks import FrameMasks, composite
from dreamvideo.engine.objectives import Objective
from dreamvideo.errors import UserError
from dreamvideo.masks import parse_matte, parse_regions
from dreamvideo.media.checkpoint import SegmentedRender
from dreamvideo.media.ffmpeg import Sound
from dreamvideo.media.frame_folder import FrameFolderRender
from dreamvideo.media.images import check_preview, read_image
from dreamvideo.media.mattes import mattes_for
from dreamvideo.media.paths import check_input
from dreamvideo.media.probe import exact_fps
from dreamvideo.motion.envelopes import Envelopes
from dreamvideo.motion.schedule import Schedule, parse_schedule
from dreamvideo.motion.zoom import (
    ZoomPlan,
    ZoomState,
    color_start,
    compose,
    cover,
    move,
    noise_start,
    zoom_frames,
)
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


def load_audio(cfg: Config) -> Envelopes | None:
    """The envelopes of ``zoom.audio`` at the animation's frame rate, if a song is given."""
    if cfg.zoom.audio is None:
        return None
    from dreamvideo.media.audio import load_envelopes

    path = Path(cfg.zoom.audio)
    check_input(path, "zoom.audio")
    a = cfg.audio
    return load_envelopes(path, float(exact_fps(cfg.zoom.fps)), a.attack, a.release, a.beat_decay)


def plan_zoom(
    cfg: Config, audio: Envelopes | None = None, on_stage: OnStage | None = None
) -> ZoomPlan:
    """Frames, schedules and the song's envelopes; every schedulable value is computed for
    every frame here, so an expression that fails or leaves its range (at frame 200, say)
    is one error before the first frame is dreamed (``on_stage`` hears how far a long
    check has come)."""
    z = cfg.zoom
    fps = exact_fps(z.fps)
    seconds = z.seconds if z.seconds is not None else audio.seconds if audio else None
    if seconds is None:
        raise UserError("zoom.seconds: null (the song's length) needs zoom.audio / --audio")
    frames = max(1, round(seconds * fps))
    n = z.interpolate
    loop = 0
    if z.loop:
        loop = min(z.loop_frames or max(1, round(fps)), frames - 1)
        if loop < 1:
            raise UserError("zoom.loop needs at least 2 frames (raise zoom.seconds)")
        # a loop closes on keys: its counts are whole numbers of keys
        keys = -(-frames // n)
        if keys * n != frames and on_stage is not None:
            on_stage(
                f"zoom.interpolate {n} with zoom.loop: {keys * n} frames rather than {frames}, "
                "so the loop closes on a dreamed frame"
            )
        frames, loop = keys * n, min(max(1, round(loop / n)), keys - 1) * n
        if loop < 1:
            raise UserError(
                f"zoom.loop with zoom.interpolate {n} needs at least {2 * n} frames "
                "(raise zoom.seconds or lower zoom.interpolate)"
            )

    def sched(key: str, numbers: bool = True) -> Schedule:
        value = getattr(z, key) if key != "layers" else (z.layers or cfg.dream.layers)
        return parse_schedule(value, f"zoom.{key}", numbers, z.interpolation)

    plan = ZoomPlan(
        fps,
        frames,
        loop,
        (sched("zoom"), sched("rotate"), sched("pan_x"), sched("pan_y")),
        sched("iterations"),
        sched("step") if z.step is not None else None,
        sched("layers", numbers=False),
        z.octaves,
        (z.center_x, z.center_y),
        audio,
        cfg.dream.color_match,
        cfg.dream.seed,
        warmup=loop,
        every=n,
        scale=cfg.dream.upscale,
    )
    _check_every_frame(plan, checking(on_stage, plan.rendered))
    return plan


def _check_every_frame(plan: ZoomPlan, progress: Callable[[int], None] | None) -> None:
    numbers = [*plan.motion, plan.iterations] + ([plan.step] if plan.step else [])
    for schedule in numbers:
        schedule.check_frames(
            range(1, plan.rendered), float(plan.fps), plan.envelopes_at, check_scheduled, progress
        )


def _hex_color(text: str) -> tuple[int, int, int]:
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


def zoom_size(cfg: Config) -> tuple[int, int]:
    """The frames' (width, height): ``zoom.width`` x ``zoom.height`` times ``dream.upscale``
    (at most 8K, as a clip's)."""
    k = cfg.dream.upscale
    size = max(16, round(cfg.zoom.width * k)), max(16, round(cfg.zoom.height * k))
    check_upscaled(size, k, "the zoom's frames", "zoom.width and zoom.height")
    return size


def start_picture(cfg: Config, image: Path | None) -> np.ndarray:
    """Frame 0 before dreaming: ``(H,W,3)`` float32 [0,1] from the picture, noise or colour."""
    size = zoom_size(cfg)
    if image is not None:
        return cover(read_image(image), size)
    if cfg.zoom.start == "noise":
        return noise_start(size, cfg.dream.seed)
    return color_start(size, _hex_color(cfg.zoom.color))


def zoom_masks(cfg: Config, start: np.ndarray, device: torch.device) -> FrameMasks:
    """The still mask and regions of a zoom, fixed in the frame: pictures, or keys of the
    start picture ``start`` ``(H,W,3)`` float [0,1]."""
    d = cfg.dream
    sources = [*([parse_matte(d.mask)] if d.mask else []), *parse_regions(d.regions).values()]
    for source in sources:
        if source.kind in ("clip", "alpha"):
            raise UserError(
                f"mask {source.text}: a zoom takes a still matte (a picture, or a luma or "
                "colour key of its start picture)"
            )
    if d.mask and cfg.zoom.loop:
        raise UserError(
            "dream.mask with zoom.loop: the kept picture moves on and cannot close a loop; "
            "drop one of them"
        )
    size = (start.shape[1], start.shape[0])
    mattes = mattes_for(
        d.mask, d.regions, size, invert=d.mask_invert, feather=d.mask_feather, input="the start"
    )
    if mattes is None:
        return FrameMasks()
    mattes.check(0, start, None)
    return FrameMasks.upload(mattes.at(0, start, None), device)


def _dreamed(
    render: SegmentedRender | FrameFolderRender,
    dreamer: Dreamer,
    objectives: dict[str, Objective],
    plan: ZoomPlan,
    start: torch.Tensor,
    size: tuple[int, int],
    dtype: str = "uint8",
    masks: FrameMasks = FrameMasks(),  # noqa: B008 (frozen)
) -> Iterator[Frame]:
    """The animation's frames from where ``render`` stands, as ``dtype``; ``objectives``:
    each keyframed objective text, parsed; ``masks``: the still mask and regions. Where the
    mask is black the frame is the start picture moved by the whole motion up to its time
    (one warp, so it stays sharp), never the dream that the zoom pushes outwards."""
    fps = float(plan.fps)
    moved = {"t": 0, "m": compose([])}  # the move from frame 0, kept as the frames go on

    def kept(t: int) -> torch.Tensor:
        moved["m"] = compose([moved["m"], plan.moves(moved["t"], t, size)])
        moved["t"] = t
        return start if t == 0 else move(start, moved["m"], plan.center)

    def dream(x: torch.Tensor, params: AscentParams, t: int) -> torch.Tensor:
        objective = Objective.sum(
            w * objectives[text] if w != 1.0 else objectives[text]
            for text, w in plan.layers.weights(t, fps)
        )
        out = replace(dreamer, objective=objective)(
            x, params, step_map=masks.matte, regions=masks.regions or None
        )
        return out if masks.matte is None else composite(kept(t), out, masks.matte)

    state = (
        ZoomState.from_arrays(render.state, plan, size, dreamer.device)
        if render.state
        else ZoomState.start(plan, size)
    )
    for image, after, t in zoom_frames(dream, plan, dreamer.params, start, state, render.done):
        # progress counts the frames the file will hold (a loop dreams a few more)
        done = round(min(t + 1, plan.end) * plan.frames / plan.end)
        yield Frame(
            None if image is None else HostFrame(image, dtype=dtype),
            None if after is None else after.to_arrays(),
            FrameReport(t, done, plan.frames, t == 0, 1.0),
        )


def render_zoom(
    cfg: Config,
    image: str | Path | None,
    output: str | Path,
    *,
    dreamer: Dreamer | None = None,
    resume: bool = False,
    restart: bool = False,
    overwrite: bool = False,
    preview: str | Path | None = None,
    on_frame: OnFrame | None = None,
    on_stage: OnStage | None = None,
    name: str | Path | None = None,
) -> RenderResult:
    """Render an infinite-dream animation: each frame is the last one moved, then dreamed.

    Starts from ``image`` (scaled to cover the frame) or from noise / a flat colour. Frame 0
    gets the full dream; later frames the ``zoom`` section's lighter, keyframed ascent and
    motion. With ``zoom.loop`` the end dissolves into the start (see
    :func:`dreamvideo.motion.zoom.loop_input`). Resumable like clips. ``name``: the start picture
    to record in the file's settings when ``image`` is a copy of it (a batch worker's).
    """
    image = Path(image) if image is not None else None
    reads = (("input", image), *cfg.reads())
    output = check_render_output(output, reads, overwrite, resume, restart)
    if preview is not None:
        preview = check_preview(preview, (*reads, ("output", output)), overwrite)
    if on_stage is not None and cfg.zoom.audio is not None:
        on_stage(f"listening to {cfg.zoom.audio}")
    audio = load_audio(cfg)
    plan = plan_zoom(cfg, audio, on_stage)
    size = zoom_size(cfg)
    song = Path(cfg.zoom.audio) if cfg.zoom.audio is not None else None
    encoding = encoding_for(cfg, output, size, loop=cfg.zoom.loop, sound=song is not None)
    plan = replace(plan, deep=encoding.deep or encoding.floating)
    for note in encoding.notes:
        if on_stage is not None:
            on_stage(note)
    if on_stage is not None:
        on_stage(
            f"{plan.frames} frames of {size[0]}x{size[1]} at {float(plan.fps):g} fps"
            + (
                f" (+{plan.warmup + plan.loop_frames} to settle and close the loop)"
                if plan.loop_frames
                else ""
            )
            + f"; loading {cfg.dream.model}"
        )
    dreamer = dreamer_for(cfg.dream, dreamer)
    objectives = {text: dreamer.parse(text) for text in plan.layers.values()}
    layers = frozenset().union(*(o.layers for o in objectives.values()))
    dreamer = replace(dreamer, net=dreamer.cut(layers))  # every keyframe's layers
    first = start_picture(cfg, image)
    masks = zoom_masks(cfg, first, dreamer.device)
    start = to_tensor(first, dreamer.device)
    job = Job(
        output,
        {
            **file_fingerprint(image),
            "song": file_fingerprint(song),
            "size": list(size),
            "frames": plan.frames,
        },
        size,
        plan.fps,
        cfg.zoom.checkpoint_every,
        run_metadata(cfg, name or image, size=list(size), fps=str(plan.fps)),
        encoding,
        Sound(song) if cfg.encode.audio and song is not None else None,
        first_note=f"dreaming: the first frame gets the full dream "
        f"({dreamer.steps(size[1], size[0])} ascent steps), later frames "
        f"{plan.params_at(1, dreamer.params).iterations} steps each",
        resume_point=lambda state: plan.time(int(state["next"])),
    )
    return run_render(
        cfg,
        job,
        lambda render: _dreamed(
            render, dreamer, objectives, plan, start, size, encoding.dtype, masks
        ),
        resume=resume,
        restart=restart,
        preview=preview,
        on_frame=on_frame,
        on_stage=on_stage,
    )
