"""Commands for clips: video (one process or chunked on workers) and the metrics of a dream."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from dreamvideo import names
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
    Output,
    Overwrite,
    Preset,
    Preview,
    Regions,
    Restart,
    Resume,
    Seed,
    Sets,
    Step,
    Threads,
    Upscale,
    Weights,
    app,
    build_config,
    err,
    out,
    rendering,
)
from dreamvideo.errors import UserError
from dreamvideo.media.paths import check_input


@app.command()
def video(
    input: Annotated[Path, typer.Argument(help="clip to dream", metavar="INPUT")],  # noqa: A002
    output: Output,
    preset: Preset = "video",
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
    upscale: Upscale = None,
    mask: Mask = None,
    mask_invert: MaskInvert = None,
    mask_feather: MaskFeather = None,
    region: Regions = None,
    sets: Sets = None,
    start: Annotated[
        float | None, typer.Option("--start", help="first second of the clip to render")
    ] = None,
    end: Annotated[float | None, typer.Option("--end", help="second to stop at")] = None,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", help="render at most this many frames")
    ] = None,
    width: Annotated[
        int | None, typer.Option("--width", help="render width in pixels (aspect kept)")
    ] = None,
    scale: Annotated[
        float | None, typer.Option("--scale", help="render at this fraction of the source size")
    ] = None,
    blend: Blend = None,
    flow: Flow = None,
    flow_weights: FlowWeights = None,
    crf: Crf = None,
    lossless: Annotated[
        bool, typer.Option("--lossless", help="lossless (H.264 RGB, H.265, VP9; big files)")
    ] = False,
    codec: Codec = None,
    fps: Annotated[
        float | None,
        typer.Option("--fps", help="frame rate of a folder of frames (default 24)"),
    ] = None,
    no_audio: NoAudio = False,
    checkpoint_every: Annotated[
        int | None, typer.Option("--checkpoint-every", help="frames between resumable checkpoints")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="render chunks of the clip in parallel on this many Ray workers "
            "(needs dreamvideo[ray]); a local Ray is started unless --ray-address is given",
            min=1,
        ),
    ] = None,
    lanes: Annotated[
        int | None,
        typer.Option(
            "--lanes",
            help="dream this many chunks of the clip in lockstep as one batch (fills a GPU; "
            "with --workers, on each worker)",
            min=1,
            max=64,
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="join this Ray cluster (or set RAY_ADDRESS), e.g. 192.168.1.10:6379",
        ),
    ] = None,
    gpus_per_worker: Annotated[
        float | None,
        typer.Option(
            "--gpus-per-worker",
            help="GPUs each worker asks Ray for (default: 1 where the cluster has GPUs; "
            "0.5 puts two workers on a GPU)",
            min=0.0,
        ),
    ] = None,
    resume: Resume = False,
    restart: Restart = False,
    preview: Preview = None,
    overwrite: Overwrite = False,
) -> None:
    """Dream a clip (or a folder of frames) into a steady DeepDream clip with its sound.

    INPUT is a clip, a folder of frames, a pattern (frames/f_%04d.png) or a quoted glob
    ("shots/*.exr"); OUTPUT a clip (.mp4 .mov .mkv .webm .gif .webp .apng) or a pattern of
    frames (out/%04d.png, .tif, .exr, .jpg).

    Example: dreamvideo video samples/astronaut-pan.mp4 -o dream.mp4 --width 160
    """
    from dreamvideo.media.sequence import is_sequence

    if not is_sequence(input):
        check_input(input)
    if input.suffix.lower() in names.IMAGE_FORMATS and not is_sequence(input):
        raise UserError(
            f"{input} is a picture; dream it with `dreamvideo image {input} -o dream.png`, "
            f"or zoom into it with `dreamvideo zoom {input} -o zoom.mp4`"
        )
    if resume and restart:
        raise UserError("--resume and --restart exclude each other")
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
        upscale=upscale,
        mask=mask,
        mask_invert=mask_invert,
        mask_feather=mask_feather,
        regions=region,
    )
    cfg = cfg.override(
        "video",
        start=start,
        end=end,
        max_frames=max_frames,
        width=width,
        scale=scale,
        blend=blend,
        flow=flow,
        checkpoint_every=checkpoint_every,
        flow_weights=str(flow_weights) if flow_weights else None,
        fps=fps,
        lanes=lanes,
    )
    cfg = cfg.override(
        "encode",
        crf=crf,
        lossless=lossless or None,
        audio=False if no_audio else None,
        codec=codec,
    )
    if workers is None and (ray_address or gpus_per_worker is not None):
        raise UserError("--ray-address and --gpus-per-worker go with --workers N")
    chunked = workers is not None or cfg.video.lanes > 1
    ray = {"address": ray_address, "gpus_per_worker": gpus_per_worker} if workers else {}
    from dreamvideo.scale.chunked import render_clip

    rendering(
        output,
        lambda **shown: render_clip(
            cfg,
            input,
            output,
            workers=workers,
            resume=resume,
            restart=restart,
            overwrite=overwrite,
            preview=preview,
            **ray,
            **shown,
        ),
        f"reading {input}",
        workers=chunked,
    )


@app.command()
def metrics(
    source: Annotated[Path, typer.Argument(help="the original clip", metavar="SOURCE")],
    output: Annotated[Path, typer.Argument(help="its dreamed version", metavar="OUTPUT")],
    first_frame: Annotated[
        int | None,
        typer.Option(
            "--first-frame",
            help="source frame the output starts at (default: from the output's metadata)",
        ),
    ] = None,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", help="measure at most this many frames")
    ] = None,
    flow: Annotated[
        Literal[names.METRIC_FLOWS], typer.Option("--flow", help="flow for the warping error")
    ] = "farneback",
    long_gap: Annotated[
        int,
        typer.Option(
            "--long-gap",
            min=0,
            help="also measure the warping error from frame t-N to frame t (0: skip)",
        ),
    ] = 4,
) -> None:
    """Temporal stability (warping error vs the source's) and dream strength with its drift."""
    check_input(source)
    check_input(output)
    from dreamvideo.media.metrics import UNRELATED, measure_clip

    m = measure_clip(source, output, first_frame, max_frames, flow, long_gap)
    table = Table("measure", "value", title=f"{output} vs {source} ({m.frames} frames)")
    table.add_row("warping error, output (0..255)", f"{m.warp_error_output:.2f}")
    table.add_row("warping error, source (0..255)", f"{m.warp_error_source:.2f}")
    table.add_row("ratio output / source (lower is steadier)", f"{m.warp_ratio:.2f}")
    if m.long_gap:
        table.add_row(
            f"the same ratio from frame t-{m.long_gap} to t",
            f"{m.long_ratio:.2f} ({m.long_error_output:.2f} / {m.long_error_source:.2f})",
        )
    table.add_row("dream strength, mean |output - source|", f"{m.strength:.1f}")
    table.add_row("strength, first / last tenth", f"{m.strength_first:.1f} / {m.strength_last:.1f}")
    table.add_row("drift (last / first)", f"{m.drift:.2f}")
    out.print(table)
    if m.unrelated:
        err.print(
            f"note: {output} does not look like a dream of {source}: their pictures correlate "
            f"{m.likeness:.2f} (a dream keeps its source's shapes, above {UNRELATED:.1f}), so "
            "these figures compare unrelated clips",
            markup=False,
            highlight=False,
        )
    if m.frames < m.source_frames and max_frames is None:
        err.print(
            f"note: {source} has {m.source_frames} frames from frame {m.first_frame}, "
            f"{output} {m.frames}: the first {m.frames} were measured",
            markup=False,
            highlight=False,
        )
