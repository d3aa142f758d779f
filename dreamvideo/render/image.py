"""Picture renders: one dream, or one dream per layer on a labelled contact sheet."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dreamvideo.config import Config
from dreamvideo.engine.color import color_stats, match_color
from dreamvideo.engine.device import to_tensor, to_uint8
from dreamvideo.engine.dreamer import Dreamer, Progress
from dreamvideo.engine.masks import FrameMasks, composite
from dreamvideo.errors import UserError
from dreamvideo.masks import reads_alpha
from dreamvideo.media.images import (
    MAX_PIXELS,
    check_image_output,
    contact_sheet,
    enlarge,
    read_alpha,
    read_image,
    resize_rgb,
    write_image,
)
from dreamvideo.media.mattes import mattes_for
from dreamvideo.render.loop import OnStage, run_metadata
from dreamvideo.render.network import dreamer_for

MAX_WIDTH = 16384  # pixels; the same bound as video.width


@dataclass(frozen=True)
class ImageResult:
    seconds: float
    objective_before: float
    objective_after: float
    size: tuple[int, int]  # (width, height)
    image: np.ndarray  # (H,W,3) uint8, the dream


def picture(source: str | Path | np.ndarray, width: int | None = None) -> np.ndarray:
    """A file or an ``(H,W,3)`` uint8 array as the ``(H,W,3)`` uint8 picture to dream,
    scaled to ``width`` pixels wide when given."""
    if width is not None and not 16 <= width <= MAX_WIDTH:
        raise UserError(f"width {width}: must be 16 .. {MAX_WIDTH} pixels")
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
            raise UserError(
                f"a picture array must be (H,W,3) uint8 RGB, got {source.shape} {source.dtype}"
            )
        rgb = source
    else:
        rgb = read_image(source)
    if width is not None and width * round(rgb.shape[0] * width / rgb.shape[1]) > MAX_PIXELS:
        raise UserError(
            f"width {width}: the picture would be over {MAX_PIXELS / 1e6:.0f} "
            "megapixels; choose a smaller width"
        )
    return resize_rgb(rgb, width)


def _path(source: str | Path | np.ndarray) -> str | Path | None:
    return None if isinstance(source, np.ndarray) else source


def colored(cfg: Config, dream: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """A picture's dream with ``dream.color_match`` applied: "source" keeps the picture's
    own colours; "first" (the picture's own dream) changes nothing."""
    if cfg.dream.color_match == "source":
        return match_color(dream, color_stats(source))
    return dream


def picture_masks(
    cfg: Config, source: str | Path | np.ndarray, rgb: np.ndarray, device: torch.device
) -> FrameMasks:
    """The mask and regions of ``dream`` for the picture ``rgb`` ``(H,W,3)`` (``source`` as
    read, at any size: its alpha is scaled to fit), on ``device``."""
    d = cfg.dream
    alpha = None  # read only when a matte is the picture's alpha
    if reads_alpha(d.mask, d.regions) and not isinstance(source, np.ndarray):
        alpha = read_alpha(source)
    if alpha is not None:
        import cv2

        alpha = cv2.resize(alpha, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)
    mattes = mattes_for(
        d.mask,
        d.regions,
        (rgb.shape[1], rgb.shape[0]),
        invert=d.mask_invert,
        feather=d.mask_feather,
        alpha=alpha is not None,
        input=str(_path(source) or "the picture"),
    )
    if mattes is None:
        return FrameMasks()
    mattes.check(0, rgb, alpha)
    return FrameMasks.upload(mattes.at(0, rgb, alpha), device)


def render_image(
    cfg: Config,
    source: str | Path | np.ndarray,
    output: str | Path | None = None,
    *,
    width: int | None = None,
    dreamer: Dreamer | None = None,
    overwrite: bool = False,
    start: Callable[[int], Progress] | None = None,
    on_stage: OnStage | None = None,
) -> ImageResult:
    """Dream the picture ``source`` (file or array); write it to ``output`` when given.

    ``start(total_steps)`` is called once the work is known and returns the progress callback;
    ``on_stage`` hears what is happening before that.
    """
    if output is not None:
        output = check_image_output(output, (("input", _path(source)), *cfg.reads()), overwrite)
    rgb = picture(source, width)
    if on_stage is not None:
        on_stage(
            f"{rgb.shape[1]}x{rgb.shape[0]} picture"
            + (f", dreamed {cfg.dream.upscale:g} times the size" if cfg.dream.upscale > 1 else "")
            + f"; loading {cfg.dream.model}"
        )
    rgb = enlarge(rgb, cfg.dream.upscale)
    dreamer = dreamer_for(cfg.dream, dreamer)
    t0 = time.perf_counter()
    x = to_tensor(rgb, dreamer.device)
    masks = picture_masks(cfg, source, rgb, dreamer.device)
    regions = masks.regions or None
    progress = start(dreamer.steps(*rgb.shape[:2])) if start else None
    dreamed = dreamer(x, progress=progress, step_map=masks.matte, regions=regions)
    # where the mask is black the picture is kept as it was, colours and all
    dream = composite(x, colored(cfg, dreamed, x), masks.matte)
    out, seconds = to_uint8(dream), time.perf_counter() - t0
    if output is not None:
        write_image(output, out, run_metadata(cfg, _path(source), width=width))
    before, after = dreamer.score(x, regions), dreamer.score(dream, regions)
    return ImageResult(seconds, before, after, (rgb.shape[1], rgb.shape[0]), out)


def render_gallery(
    cfg: Config,
    source: str | Path,
    output: str | Path,
    layers: Sequence[str] | None = None,
    size: int = 256,
    columns: int = 0,
    *,
    dreamer: Dreamer | None = None,
    overwrite: bool = False,
    start: Callable[[int], Progress] | None = None,
    on_stage: OnStage | None = None,
) -> list[str]:
    """Dream ``source`` once per layer (default: every layer) into a labelled contact sheet."""
    output = check_image_output(output, (("input", source), *cfg.reads()), overwrite)
    rgb = read_image(source)
    rgb = resize_rgb(rgb, round(rgb.shape[1] * min(1.0, size / max(rgb.shape[:2]))))
    rgb = enlarge(rgb, cfg.dream.upscale, "each tile")
    if on_stage is not None:
        on_stage(f"loading {cfg.dream.model}")
    dreamer = dreamer_for(cfg.dream, dreamer)
    names = list(layers) if layers else dreamer.full.names
    objectives = [dreamer.parse(name) for name in names]  # every name checked before work
    x = to_tensor(rgb, dreamer.device)
    progress = start(dreamer.steps(*rgb.shape[:2]) * len(names)) if start else None
    tiles = [
        (name, to_uint8(colored(cfg, dreamer.with_objective(obj)(x, progress=progress), x)))
        for name, obj in zip(names, objectives, strict=True)
    ]
    write_image(output, contact_sheet(tiles, columns), run_metadata(cfg, source, layers=names))
    return names
