"""``dreamvideo live``: dream a camera or a stream as it plays."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from dreamvideo.cli.common import (
    Blend,
    Codec,
    ColorMatch,
    Crf,
    Device,
    Flow,
    FlowWeights,
    Guide,
    Iterations,
    Layers,
    Mask,
    MaskFeather,
    MaskInvert,
    Model,
    NoAudio,
    Octaves,
    Overwrite,
    Preset,
    Regions,
    Seed,
    Sets,
    Step,
    Threads,
    Weights,
    app,
    build_config,
    err,
)
from dreamvideo.errors import UserError


@app.command()
def live(
    source: Annotated[
        str,
        typer.Argument(
            help="camera index (0), device path, stream URL (udp://, srt://, rtsp://, http://) "
            "or a clip",
            metavar="SOURCE",
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="record the dream to this clip")
    ] = None,
    serve: Annotated[
        str | None,
        typer.Option(
            "--serve",
            help="[HOST:]PORT: a page and an MJPEG stream of the dream (127.0.0.1 unless "
            "a host is given), for a browser or OBS",
        ),
    ] = None,
    stream: Annotated[
        str | None,
        typer.Option(
            "--stream",
            help="push the dream through ffmpeg to this URL (udp://, srt://, tcp://, rtmp://) "
            "for OBS or another tool to take in",
        ),
    ] = None,
    seconds: Annotated[
        float | None,
        typer.Option(
            "--seconds",
            help="stop this many seconds (wall clock) after the source starts opening",
            min=0.1,
        ),
    ] = None,
    frames: Annotated[
        int | None, typer.Option("--frames", help="stop after this many dreamed frames", min=1)
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="seconds a source may send nothing (its first picture included) before "
            "the run ends",
            min=1.0,
        ),
    ] = 20.0,
    fps: Annotated[
        float,
        typer.Option("--fps", help="target dreamed frames per second (and the recording's)"),
    ] = 15.0,
    width: Annotated[
        int,
        typer.Option("--width", help="dream this many pixels wide, 16 to 16384 (0: as it comes)"),
    ] = 256,
    realtime: Annotated[
        bool,
        typer.Option(
            "--realtime/--every-frame",
            help="play a clip at its own rate, dropping what the dream cannot keep up with "
            "(--every-frame dreams each frame of it)",
        ),
    ] = True,
    preset: Preset = "video-fast",
    layers: Layers = None,
    model: Model = None,
    weights: Weights = None,
    guide: Guide = None,
    octaves: Octaves = None,
    iterations: Iterations = None,
    step: Step = None,
    seed: Seed = None,
    device: Device = None,
    threads: Threads = None,
    color_match: ColorMatch = None,
    mask: Mask = None,
    mask_invert: MaskInvert = None,
    mask_feather: MaskFeather = None,
    region: Regions = None,
    blend: Blend = None,
    flow: Flow = None,
    flow_weights: FlowWeights = None,
    crf: Crf = None,
    codec: Codec = None,
    no_audio: NoAudio = False,
    sets: Sets = None,
    overwrite: Overwrite = False,
) -> None:
    """Dream a live camera or stream steadily as it plays.

    Shown on a local page (--serve), pushed to a stream (--stream), recorded with the
    source's sound (-o), for --seconds or --frames, or until Ctrl-C (or SIGTERM) or the end
    of the stream; the recording is kept either way.
    Presets, objectives, masks (pictures, keys, or a matte clip that loops) and regions work
    as for video.

    Example: dreamvideo live 0 --serve 8000 -o live.mp4
    """
    from dreamvideo.media.live import parse_serve
    from dreamvideo.render.live import run_live

    if seconds is not None and not math.isfinite(seconds):
        raise UserError(f"--seconds {seconds:g}: give a finite time, or leave it out to run on")
    if output is None and serve is None and stream is None:
        raise UserError(
            "live needs somewhere to show the dream: --serve PORT, --stream URL and/or -o FILE"
        )
    where = parse_serve(serve) if serve is not None else None
    cfg = build_config(
        preset,
        sets,
        layers=layers,
        model=model,
        weights=weights,
        guide=guide,
        octaves=octaves,
        iterations=iterations,
        step=step,
        seed=seed,
        device=device,
        threads=threads,
        color_match=color_match,
        mask=mask,
        mask_invert=mask_invert,
        mask_feather=mask_feather,
        regions=region,
    )
    cfg = cfg.override(
        "video", blend=blend, flow=flow, flow_weights=str(flow_weights) if flow_weights else None
    )
    cfg = cfg.override("encode", crf=crf, audio=False if no_audio else None, codec=codec)

    def served(address: tuple[str, int]) -> None:
        err.print(f"serving the dream at http://{address[0]}:{address[1]}/ "
                  f"(MJPEG: /stream.mjpg)", highlight=False)  # fmt: skip

    r = run_live(
        cfg,
        source,
        output=output,
        serve=where,
        stream=stream,
        seconds=seconds,
        frames=frames,
        fps=fps,
        width=width or None,
        realtime=realtime,
        overwrite=overwrite,
        quiet=timeout,
        on_stats=lambda s: err.print(s.line(), highlight=False),
        on_stage=lambda text: err.print(text, highlight=False, markup=False),
        on_serve=served,
    )
    for note in r.notes:
        err.print(note, highlight=False, markup=False)
    err.print(r.stats.line(), highlight=False)
    if r.output is not None and r.stats.written:
        err.print(f"wrote {r.output}: {r.stats.written} frames {r.size[0]}x{r.size[1]} at "
                  f"{fps:g} fps", highlight=False, markup=False)  # fmt: skip
    elif r.output is not None:
        err.print(f"nothing was recorded: {r.output} was not written", highlight=False,
                  markup=False)  # fmt: skip
    if r.stopped:  # a signal ended the run: what it made is kept, the exit code says so
        raise typer.Exit(128 + r.stopped)
