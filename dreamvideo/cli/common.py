"""What the command-line modules share: the app, the consoles, option aliases, building the
config from flags, and the progress and report around a render."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

from dreamvideo import names
from dreamvideo.config import Config
from dreamvideo.errors import UserError, out_of_memory
from dreamvideo.masks import join_regions
from dreamvideo.presets import apply_sets, load_preset

if TYPE_CHECKING:
    from dreamvideo.cli.progress import Display
    from dreamvideo.render.loop import RenderResult

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="DeepDream pictures, steady DeepDream videos and infinite zoom loops.",
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _version(shown: bool) -> None:
    if shown:
        from dreamvideo import __version__

        out.print(f"dreamvideo {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="print the version and exit",
            callback=_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """DeepDream pictures, steady DeepDream videos and infinite zoom loops."""


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
Device = Annotated[
    str | None,
    typer.Option("--device", help="auto (CUDA when there), cpu, cuda, cuda:N or mps (Apple GPU)"),
]
Threads = Annotated[
    int | None, typer.Option("--threads", help="CPU threads (default: all cores)", min=0)
]
Upscale = Annotated[
    float | None,
    typer.Option(
        "--upscale",
        help="output K times the size (1 < K <= 4); the dream makes the finer detail",
    ),
]
Mask = Annotated[
    str | None,
    typer.Option(
        "--mask",
        help="dream only where this is white: a picture, a clip, alpha, luma:LOW-HIGH (0..1) "
        "or key:#RRGGBB[/TOLERANCE]",
    ),
]
MaskInvert = Annotated[
    bool | None, typer.Option("--mask-invert", help="dream where the mask is black instead")
]
MaskFeather = Annotated[
    float | None,
    typer.Option("--mask-feather", help="soften the mask's edge over about PX pixels", min=0),
]
Regions = Annotated[
    list[str] | None,
    typer.Option(
        "--region",
        help="a named matte NAME=SOURCE for region(NAME, TERM) objectives (repeatable)",
    ),
]
ColorMatch = Annotated[
    Literal[names.COLOR_MATCHES] | None,
    typer.Option(
        "--color-match",
        help="keep colours: match each frame to its source, or to the first dream",
    ),
]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="any config value, e.g. --set dream.jitter=16 (repeatable)"),
]
Output = Annotated[Path, typer.Option("--output", "-o", help="output file")]
Codec = Annotated[
    Literal[names.CODECS] | None,
    typer.Option(
        "--codec",
        help="video codec (default: the output's own: H.264 for .mp4/.mov/.mkv, VP9 for .webm)",
    ),
]
Crf = Annotated[
    int | None,
    typer.Option("--crf", help="quality: 0 best .. 51 worst (default 18; H.264, H.265, VP9, AV1)"),
]
NoAudio = Annotated[bool, typer.Option("--no-audio", help="leave the source's sound out")]
Blend = Annotated[
    float | None,
    typer.Option("--blend", help="how much of the previous frame's dream carries over (0..1)"),
]
Flow = Annotated[Literal[names.FLOWS] | None, typer.Option("--flow", help="optical flow")]
FlowWeights = Annotated[
    Path | None, typer.Option("--flow-weights", help="RAFT weights file (with --flow raft)")
]
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
    if "regions" in dream:
        dream["regions"] = join_regions(dream["regions"] or [])  # type: ignore[arg-type]
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


def display(label: str) -> Display:
    from dreamvideo.cli.progress import Display

    return Display(label)


def rendering(
    output: Path, render: Callable[..., RenderResult], first: str, workers: bool = False
) -> None:
    """Run ``render(on_frame=..., on_stage=...)`` (and ``on_worker=...`` with ``workers``)
    with progress; Ctrl-C says what is kept. ``first`` is shown at once, before torch is
    even imported."""
    with display("dreaming") as shown:
        shown.stage(first)
        from dreamvideo.media.checkpoint import parts_dir

        hooks = {"on_worker": shown.worker} if workers else {}
        kept = parts_dir(output)
        try:
            r = render(on_frame=shown.frame, on_stage=shown.stage, **hooks)
        except KeyboardInterrupt as stop:
            err.print(
                f"interrupted; finished frames are kept in {kept}: run the same command "
                "with --resume to continue"
                if kept.is_dir()
                else "interrupted before the first checkpoint; nothing was kept",
                markup=False,
            )
            raise typer.Exit(getattr(stop, "code", 130)) from None
        except Exception as e:
            if (oom := out_of_memory(e)) is None or not kept.is_dir():
                raise
            kept_text = f"finished frames are kept in {kept}"
            again = "--resume continues with the same settings, --restart with new ones"
            raise UserError(f"{oom}; {kept_text}: {again}") from None
    for note in r.notes:
        err.print(note, markup=False, highlight=False)
    report(output, r)


def number_or_text(value: str | None, kind: type = float) -> float | int | str | None:
    """A flag that takes a number or a keyframe schedule."""
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        return value
