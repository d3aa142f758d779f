"""The ``dreamvideo`` command line: one function per command, user mistakes as one line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from dreamvideo import names
from dreamvideo.config import Config
from dreamvideo.errors import UserError
from dreamvideo.presets import apply_sets, describe, load_preset, preset_names, read_preset

if TYPE_CHECKING:
    from dreamvideo.progress import Display
    from dreamvideo.render import RenderResult

try:  # typer >= 0.22 carries its own click; older ones use click's exceptions
    from typer.exceptions import TyperException as _UsageError
except ImportError:  # pragma: no cover
    from click import ClickException as _UsageError  # type: ignore[assignment]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="DeepDream pictures, steady DeepDream videos and infinite zoom loops.",
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# ----------------------------------------------------------------- shared options
Preset = Annotated[
    str,
    typer.Option(
        "--preset", "-p", help="preset name (see `dreamvideo presets`) or path to a YAML file"
    ),
]
Layers = Annotated[
    str | None,
    typer.Option(
        "--layers",
        "-l",
        help='objective, e.g. "blocks.10", "blocks.10:42", '
        '"0.5*blocks.8 + blocks.10:7", "guide(blocks.10)"',
    ),
]
Model = Annotated[
    Literal[names.MODELS] | None,
    typer.Option("--model", "-m", help="backbone network (see `dreamvideo layers`)"),
]
Weights = Annotated[
    Path | None,
    typer.Option(
        "--weights", help="local state-dict file for the model (torchvision models offline)"
    ),
]
Guide = Annotated[
    Path | None, typer.Option("--guide", help="guide picture for guide(LAYER) objectives")
]
Octaves = Annotated[int | None, typer.Option("--octaves", help="pyramid levels")]
Iterations = Annotated[
    int | None, typer.Option("--iterations", "-i", help="ascent steps per octave")
]
Step = Annotated[float | None, typer.Option("--step", help="step size (0..255 pixel units)")]
Seed = Annotated[int | None, typer.Option("--seed", help="random seed (jitter)")]
Device = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or cuda:N")]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="any config value, e.g. --set dream.jitter=16 (repeatable)"),
]
Output = Annotated[Path, typer.Option("--output", "-o", help="output file")]
Resume = Annotated[bool, typer.Option("--resume", help="continue an interrupted render of OUTPUT")]
Restart = Annotated[bool, typer.Option("--restart", help="discard an interrupted render of OUTPUT")]
Preview = Annotated[
    Path | None,
    typer.Option("--preview", help="PNG refreshed with the latest frame while rendering"),
]
Overwrite = Annotated[bool, typer.Option("--overwrite", "-y", help="replace OUTPUT if it exists")]


def build_config(preset: str, sets: list[str] | None = None, **dream: object) -> Config:
    """The run's config: preset, then ``--set`` values, then the dedicated flags."""
    cfg = apply_sets(load_preset(preset), sets or [])
    if dream.get("weights") is not None:
        dream["weights"] = str(dream["weights"])
    if dream.get("guide") is not None:
        dream["guide"] = str(dream["guide"])
    return cfg.override("dream", **dream)


def report(output: Path, r: RenderResult) -> None:
    out.print(
        f"wrote {output}: {r.frames} frames {r.size[0]}x{r.size[1]} at {r.fps} fps "
        f"({float(r.fps):.3f}); {r.seconds_per_frame:.2f} s per frame"
        + (f", resumed at frame {r.resumed_from}" if r.resumed_from else "")
        + (f", {r.scene_cuts} scene cut(s)" if r.scene_cuts else ""),
        markup=False,
        highlight=False,
    )


def _check_input(path: Path) -> None:
    if not path.exists():
        raise UserError(f"input file {path} does not exist")
    if not path.is_file():
        raise UserError(f"input {path} is not a file")


# ----------------------------------------------------------------- commands


@app.command()
def image(
    input: Annotated[Path, typer.Argument(help="picture to dream")],  # noqa: A002
    output: Output,
    preset: Preset = "default",
    layers: Layers = None,
    model: Model = None,
    weights: Weights = None,
    guide: Guide = None,
    octaves: Octaves = None,
    iterations: Iterations = None,
    step: Step = None,
    seed: Seed = None,
    device: Device = None,
    sets: Sets = None,
    width: Annotated[
        int | None, typer.Option("--width", help="resize to this width first (pixels, aspect kept)")
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Dream a picture.

    Example: dreamvideo image samples/chelsea.jpg -o cat.png --preset eyes
    """
    _check_input(input)
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
    )
    from dreamvideo.render_image import render_image

    with _display("dreaming") as shown:
        r = render_image(
            cfg,
            input,
            output,
            width=width,
            overwrite=overwrite,
            start=shown.steps,
            on_stage=shown.stage,
        )
    gain = r.objective_after / r.objective_before if r.objective_before else float("inf")
    out.print(
        f"wrote {output} ({r.size[0]}x{r.size[1]}) in {r.seconds:.1f} s; objective "
        f"{cfg.dream.layers}: {r.objective_before:.3g} -> {r.objective_after:.3g} "
        f"({gain:.1f}x)",
        markup=False,
        highlight=False,
    )


@app.command()
def gallery(
    input: Annotated[Path, typer.Argument(help="picture to dream")],  # noqa: A002
    output: Output,
    preset: Preset = "default",
    model: Model = None,
    weights: Weights = None,
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers",
            "-l",
            help='layers to show, e.g. "blocks.3 blocks.8 blocks.10:7" (default: all)',
        ),
    ] = None,
    size: Annotated[int, typer.Option("--size", help="tile size in pixels", min=32)] = 256,
    columns: Annotated[int, typer.Option("--columns", help="grid columns (0: auto)", min=0)] = 0,
    octaves: Octaves = None,
    iterations: Iterations = None,
    step: Step = None,
    seed: Seed = None,
    device: Device = None,
    sets: Sets = None,
    overwrite: Overwrite = False,
) -> None:
    """Dream one picture at each layer into a labelled contact sheet, to choose layers by eye.

    Example: dreamvideo gallery samples/chelsea.jpg -o sheet.png --model efficientnet_lite0
    """
    _check_input(input)
    cfg = build_config(
        preset,
        sets,
        model=model,
        weights=weights,
        octaves=octaves,
        iterations=iterations,
        step=step,
        seed=seed,
        device=device,
    )
    from dreamvideo.render_image import render_gallery

    chosen = layers.replace(",", " ").split() if layers else None
    with _display("gallery") as shown:
        drawn = render_gallery(
            cfg,
            input,
            output,
            chosen,
            size,
            columns,
            overwrite=overwrite,
            start=shown.steps,
            on_stage=shown.stage,
        )
    out.print(
        f"wrote {output}: {len(drawn)} layers of {cfg.dream.model}", markup=False, highlight=False
    )


@app.command()
def video(
    input: Annotated[Path, typer.Argument(help="clip to dream")],  # noqa: A002
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
    blend: Annotated[
        float | None,
        typer.Option("--blend", help="how much of the previous frame's dream carries over (0..1)"),
    ] = None,
    flow: Annotated[
        Literal[names.FLOWS] | None, typer.Option("--flow", help="optical flow")
    ] = None,
    flow_weights: Annotated[
        Path | None, typer.Option("--flow-weights", help="RAFT weights file (with --flow raft)")
    ] = None,
    crf: Annotated[
        int | None, typer.Option("--crf", help="H.264 quality: 0 best .. 51 worst (default 18)")
    ] = None,
    lossless: Annotated[
        bool, typer.Option("--lossless", help="lossless RGB H.264 (big files)")
    ] = False,
    no_audio: Annotated[
        bool, typer.Option("--no-audio", help="leave the source's sound out")
    ] = False,
    checkpoint_every: Annotated[
        int | None, typer.Option("--checkpoint-every", help="frames between resumable checkpoints")
    ] = None,
    resume: Resume = False,
    restart: Restart = False,
    preview: Preview = None,
    overwrite: Overwrite = False,
) -> None:
    """Dream a clip into a steady DeepDream clip with its sound.

    Example: dreamvideo video samples/harbour.mp4 -o dream.mp4 --width 320
    """
    _check_input(input)
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
    )
    cfg = cfg.override(
        "encode", crf=crf, lossless=lossless or None, audio=False if no_audio else None
    )
    from dreamvideo.render_video import render_video

    _rendering(
        output,
        lambda **shown: render_video(
            cfg,
            input,
            output,
            resume=resume,
            restart=restart,
            overwrite=overwrite,
            preview=preview,
            **shown,
        ),
        f"reading {input}",
    )


def _display(label: str) -> Display:
    from dreamvideo.progress import Display

    return Display(label)


def _rendering(output: Path, render: Callable[..., RenderResult], first: str) -> None:
    """Run ``render(on_frame=..., on_stage=...)`` with progress; Ctrl-C says what is kept.

    ``first`` is shown at once, before torch is even imported."""
    with _display("dreaming") as shown:
        shown.stage(first)
        from dreamvideo.checkpoint import parts_dir

        try:
            r = render(on_frame=shown.frame, on_stage=shown.stage)
        except KeyboardInterrupt:
            kept = parts_dir(output)
            err.print(
                f"interrupted; finished frames are kept in {kept}: run the same command "
                "with --resume to continue"
                if kept.is_dir()
                else "interrupted before the first checkpoint; nothing was kept",
                markup=False,
            )
            raise typer.Exit(130) from None
    for note in r.notes:
        err.print(note, markup=False, highlight=False)
    report(output, r)


@app.command()
def zoom(
    image: Annotated[
        Path | None,
        typer.Argument(
            help="picture to start from (default: noise, or a colour with --start color)"
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
    seed: Seed = None,
    device: Device = None,
    sets: Sets = None,
    crf: Annotated[int | None, typer.Option("--crf", help="H.264 quality")] = None,
    resume: Resume = False,
    restart: Restart = False,
    preview: Preview = None,
    overwrite: Overwrite = False,
) -> None:
    """Render an infinite zoom-dream animation from a picture or from noise.

    Example: dreamvideo zoom samples/coffee.jpg -o coffee-zoom.mp4 --seconds 10 --loop
    """
    if image is not None:
        _check_input(image)
    if resume and restart:
        raise UserError("--resume and --restart exclude each other")
    cfg = build_config(
        preset, sets, model=model, weights=weights, guide=guide, seed=seed, device=device
    )
    cfg = cfg.override(
        "zoom",
        seconds=seconds,
        fps=fps,
        width=width,
        height=height,
        zoom=_number_or_text(zoom_rate),
        rotate=_number_or_text(rotate),
        pan_x=_number_or_text(pan_x),
        pan_y=_number_or_text(pan_y),
        iterations=_number_or_text(iterations, int),
        layers=layers,
        step=_number_or_text(step),
        start=start,
        color=color,
        loop=loop or None,
        loop_frames=loop_frames,
    )
    cfg = cfg.override("encode", crf=crf)
    from dreamvideo.render_zoom import render_zoom

    _rendering(
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


def _number_or_text(value: str | None, kind: type = float) -> float | int | str | None:
    """A flag that takes a number or a keyframe schedule."""
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        return value


@app.command()
def metrics(
    source: Annotated[Path, typer.Argument(help="the original clip")],
    output: Annotated[Path, typer.Argument(help="its dreamed version")],
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
) -> None:
    """Temporal stability (warping error vs the source's) and dream strength with its drift."""
    _check_input(source)
    _check_input(output)
    from dreamvideo.metrics import measure_clip

    m = measure_clip(source, output, first_frame, max_frames, flow)
    table = Table("measure", "value", title=f"{output} vs {source} ({m.frames} frames)")
    table.add_row("warping error, output (0..255)", f"{m.warp_error_output:.2f}")
    table.add_row("warping error, source (0..255)", f"{m.warp_error_source:.2f}")
    table.add_row("ratio output / source (lower is steadier)", f"{m.warp_ratio:.2f}")
    table.add_row("dream strength, mean |output - source|", f"{m.strength:.1f}")
    table.add_row("strength, first / last tenth", f"{m.strength_first:.1f} / {m.strength_last:.1f}")
    table.add_row("drift (last / first)", f"{m.drift:.2f}")
    out.print(table)


@app.command("layers")
def layers_cmd(
    model: Annotated[
        Literal[names.MODELS], typer.Argument(help="backbone network")
    ] = names.DEFAULT_MODEL,
) -> None:
    """List a model's layer names with their channels and stride (no weights needed)."""
    from dreamvideo.models import load_backbone

    net = load_backbone(model, pretrained=False)
    table = Table("layer", "channels", "stride", title=f"{model} layers")
    for info in net.layer_table(299 if model == "inception_v3" else 224):
        table.add_row(info.name, str(info.channels), str(info.stride))
    out.print(table)


@app.command()
def presets(
    name: Annotated[str | None, typer.Argument(help="show this preset's full settings")] = None,
) -> None:
    """List the presets, or print one preset's full settings as YAML."""
    if name is not None:
        import yaml

        path, _ = read_preset(name)
        out.print(f"# {path}\n# {describe(name)}", markup=False, highlight=False)
        out.print(
            yaml.safe_dump(load_preset(name).to_dict(), sort_keys=False).rstrip(),
            markup=False,
            highlight=False,
        )
        return
    table = Table("preset", "model", "layers", "description")
    for preset in preset_names():
        cfg = load_preset(preset)
        table.add_row(preset, cfg.dream.model, cfg.dream.layers, describe(preset))
    out.print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; every user mistake becomes one line on stderr and exit code 2,
    Ctrl-C exit code 130. Returns the exit code (the console script exits with it)."""
    try:
        code = app(args=argv, standalone_mode=False, prog_name="dreamvideo")
        return code if isinstance(code, int) else 0
    except UserError as e:
        message = f"error: {e}"
    except _UsageError as e:
        message = f"error: {e.format_message()}"
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        return 130
    err.print(" ".join(message.split()), markup=False, highlight=False, soft_wrap=True)
    return 2


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
