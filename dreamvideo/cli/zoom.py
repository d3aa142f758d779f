"""``dreamvideo zoom``: infinite zoom-dream animations, keyframed or driven by a song."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from dreamvideo import names
from dreamvideo.cli.common import (
    Codec,
    ColorMatch,
    Crf,
    Device,
    Guide,
    Mask,
    MaskFeather,
    MaskInvert,
    Model,
    Output,
    Overwrite,
    Preset,
    Preview,
    Regions,
    Restart,
    Resume,
    Seed,
    Sets,
    Threads,
    Upscale,
    Weights,
    app,
    build_config,
    number_or_text,
    rendering,
)
from dreamvideo.errors import UserError
from dreamvideo.media.paths import check_input
from dreamvideo.presets import set_values


@app.command()
def zoom(
    image: Annotated[
        Path | None,
        typer.Argument(
            help="picture to start from (default: noise, or a colour with --start color)",
            metavar="IMAGE",
        ),
    ] = None,
    output: Output = Path("zoom.mp4"),
    preset: Preset = "zoom",
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers",
            "-l",
            help='objective, or keyframes that cross-fade: "0: blocks.8, 5s: blocks.10"',
        ),
    ] = None,
    model: Model = None,
    weights: Weights = None,
    guide: Guide = None,
    seconds: Annotated[float | None, typer.Option("--seconds", help="length")] = None,
    fps: Annotated[float | None, typer.Option("--fps", help="frames per second")] = None,
    width: Annotated[int | None, typer.Option("--width", help="frame width")] = None,
    height: Annotated[int | None, typer.Option("--height", help="frame height")] = None,
    zoom_rate: Annotated[
        str | None,
        typer.Option("--zoom", help='zoom factor per second, or keyframes "0: 1.05, 120: 1.3"'),
    ] = None,
    rotate: Annotated[
        str | None, typer.Option("--rotate", help="degrees per second (or keyframes)")
    ] = None,
    pan_x: Annotated[
        str | None, typer.Option("--pan-x", help="pixels per second to the right (or keyframes)")
    ] = None,
    pan_y: Annotated[
        str | None, typer.Option("--pan-y", help="pixels per second down (or keyframes)")
    ] = None,
    iterations: Annotated[
        str | None, typer.Option("--iterations", "-i", help="ascent steps per frame (or keyframes)")
    ] = None,
    step: Annotated[
        str | None, typer.Option("--step", help="step size per frame (or keyframes)")
    ] = None,
    start: Annotated[
        Literal[names.ZOOM_STARTS] | None,
        typer.Option("--start", help="what to start from without a picture"),
    ] = None,
    color: Annotated[str | None, typer.Option("--color", help="#RRGGBB for --start color")] = None,
    loop: Annotated[
        bool, typer.Option("--loop", help="end flows into the start, for playing on repeat")
    ] = False,
    loop_frames: Annotated[
        int | None,
        typer.Option("--loop-frames", help="frames of the loop cross-fade (default: 1 s)"),
    ] = None,
    interpolate: Annotated[
        int | None,
        typer.Option(
            "--interpolate",
            help="dream every Nth frame; the frames between follow the exact motion (no flow)",
        ),
    ] = None,
    audio: Annotated[
        Path | None,
        typer.Option(
            "--audio",
            help="song whose envelopes (rms, onset, beat, bass, mid, treble) drive the "
            "schedules' expressions and which becomes the soundtrack; its length is the "
            "animation's unless --seconds is given",
        ),
    ] = None,
    seed: Seed = None,
    device: Device = None,
    threads: Threads = None,
    color_match: ColorMatch = None,
    upscale: Upscale = None,
    mask: Mask = None,
    mask_invert: MaskInvert = None,
    mask_feather: MaskFeather = None,
    region: Regions = None,
    sets: Sets = None,
    crf: Crf = None,
    codec: Codec = None,
    resume: Resume = False,
    restart: Restart = False,
    preview: Preview = None,
    overwrite: Overwrite = False,
) -> None:
    """Render an infinite zoom-dream animation from a picture or from noise.

    Example: dreamvideo zoom samples/coffee.jpg -o coffee-zoom.mp4 --seconds 10 --loop
    """
    if image is not None:
        check_input(image)
    if resume and restart:
        raise UserError("--resume and --restart exclude each other")
    cfg = build_config(
        preset,
        sets,
        model=model,
        weights=weights,
        guide=guide,
        seed=seed,
        device=device,
        threads=threads,
        color_match=color_match,
        upscale=upscale,
        mask=mask,
        mask_invert=mask_invert,
        mask_feather=mask_feather,
        regions=region,
    )
    cfg = cfg.override(
        "zoom",
        seconds=seconds,
        fps=fps,
        width=width,
        height=height,
        zoom=number_or_text(zoom_rate),
        rotate=number_or_text(rotate),
        pan_x=number_or_text(pan_x),
        pan_y=number_or_text(pan_y),
        iterations=number_or_text(iterations, int),
        layers=layers,
        step=number_or_text(step),
        start=start,
        color=color,
        loop=loop or None,
        loop_frames=loop_frames,
        interpolate=interpolate,
    )
    cfg = cfg.override("encode", crf=crf, codec=codec)
    if audio is not None:
        check_input(audio, "--audio")
        cfg = cfg.override("zoom", audio=str(audio))
        if seconds is None:  # the song's length
            cfg = set_values(cfg, {"zoom.seconds": None})
    from dreamvideo.render.zoom import render_zoom

    rendering(
        output,
        lambda **shown: render_zoom(
            cfg,
            image,
            output,
            resume=resume,
            restart=restart,
            overwrite=overwrite,
            preview=preview,
            **shown,
        ),
        f"preparing {output}",
    )
