"""Commands for pictures and for looking around: image, gallery, layers, presets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from dreamvideo import names
from dreamvideo.cli.common import (
    ColorMatch,
    Device,
    Guide,
    Iterations,
    Layers,
    Mask,
    MaskFeather,
    MaskInvert,
    Model,
    Octaves,
    Output,
    Overwrite,
    Preset,
    Regions,
    Seed,
    Sets,
    Step,
    Threads,
    Upscale,
    Weights,
    app,
    build_config,
    display,
    out,
)
from dreamvideo.media.paths import check_input
from dreamvideo.presets import describe, load_preset, preset_names, read_preset

MAX_TILE = 1024  # pixels: a sheet of every layer at this size is already ~100 megapixels


@app.command()
def image(
    input: Annotated[Path, typer.Argument(help="picture to dream", metavar="INPUT")],  # noqa: A002
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
    threads: Threads = None,
    color_match: ColorMatch = None,
    upscale: Upscale = None,
    mask: Mask = None,
    mask_invert: MaskInvert = None,
    mask_feather: MaskFeather = None,
    region: Regions = None,
    sets: Sets = None,
    width: Annotated[
        int | None, typer.Option("--width", help="resize to this width first (pixels, aspect kept)")
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Dream a picture.

    Example: dreamvideo image samples/chelsea.jpg -o cat.png --preset eyes
    """
    check_input(input)
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
    from dreamvideo.render.image import render_image

    with display("dreaming") as shown:
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
    input: Annotated[Path, typer.Argument(help="picture to dream", metavar="INPUT")],  # noqa: A002
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
    size: Annotated[
        int, typer.Option("--size", help="tile size in pixels", min=32, max=MAX_TILE)
    ] = 256,
    columns: Annotated[
        int, typer.Option("--columns", help="grid columns (0: auto; at most one per layer)", min=0)
    ] = 0,
    octaves: Octaves = None,
    iterations: Iterations = None,
    step: Step = None,
    seed: Seed = None,
    device: Device = None,
    threads: Threads = None,
    color_match: ColorMatch = None,
    sets: Sets = None,
    overwrite: Overwrite = False,
) -> None:
    """Dream one picture at each layer into a labelled contact sheet, to choose layers by eye.

    Example: dreamvideo gallery samples/chelsea.jpg -o sheet.png --model efficientnet_lite0
    """
    check_input(input)
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
        threads=threads,
        color_match=color_match,
    )
    from dreamvideo.render.image import render_gallery

    chosen = layers.replace(",", " ").split() if layers else None
    with display("gallery") as shown:
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


@app.command("layers")
def layers_cmd(
    model: Annotated[
        Literal[names.MODELS], typer.Argument(help="backbone network", metavar="MODEL")
    ] = names.DEFAULT_MODEL,
) -> None:
    """List a model's layer names with their channels and stride (no weights needed)."""
    from dreamvideo.engine.models import load_backbone

    net = load_backbone(model, pretrained=False)
    table = Table("layer", "channels", "stride", title=f"{model} layers")
    for info in net.layer_table(299 if model == "inception_v3" else 224):
        table.add_row(info.name, str(info.channels), str(info.stride))
    out.print(table)


@app.command()
def presets(
    name: Annotated[
        str | None, typer.Argument(help="show this preset's full settings", metavar="NAME")
    ] = None,
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
