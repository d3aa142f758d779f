"""The Python API: the functions the command line, the workers and the studio all call.

Pictures go in as files or ``(H,W,3)`` uint8 RGB arrays; clips and zooms are written to
files. Every function takes a :class:`Config` (see :func:`load_config`) and, optionally, a
:class:`Dreamer` loaded once with :func:`load_dreamer` and reused across calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dreamvideo.config import Config
from dreamvideo.engine.dreamer import Dreamer
from dreamvideo.presets import load_preset, set_values
from dreamvideo.render.image import render_image
from dreamvideo.render.loop import OnFrame, RenderResult
from dreamvideo.render.network import dreamer_for
from dreamvideo.render.zoom import render_zoom
from dreamvideo.scale.chunked import render_clip


def load_config(
    preset: str | Path = "default", overrides: Mapping[str, Any] | None = None
) -> Config:
    """A preset (name or YAML path) with ``{"section.key": value}`` overrides, validated."""
    return set_values(load_preset(preset), overrides or {})


def load_dreamer(cfg: Config | None = None) -> Dreamer:
    """Load the network and objective of ``cfg.dream`` once, to pass to many renders."""
    return dreamer_for((cfg or Config()).dream)


def dream_image(
    picture: str | Path | np.ndarray,
    cfg: Config | None = None,
    output: str | Path | None = None,
    *,
    width: int | None = None,
    dreamer: Dreamer | None = None,
    overwrite: bool = False,
) -> np.ndarray:
    """Dream a picture; returns the ``(H,W,3)`` uint8 dream (also written to ``output``)."""
    return render_image(
        cfg or Config(), picture, output, width=width, dreamer=dreamer, overwrite=overwrite
    ).image


def dream_video(
    source: str | Path,
    output: str | Path,
    cfg: Config | None = None,
    *,
    dreamer: Dreamer | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_frame: OnFrame | None = None,
) -> RenderResult:
    """Dream a clip into ``output`` with its sound (``cfg`` defaults to the ``video`` preset;
    with ``video.lanes`` > 1 its chunks are dreamed side by side, as lanes)."""
    return render_clip(
        cfg or load_preset("video"),
        source,
        output,
        dreamer=dreamer,
        resume=resume,
        overwrite=overwrite,
        on_frame=on_frame,
    )


def dream_zoom(
    output: str | Path,
    cfg: Config | None = None,
    image: str | Path | None = None,
    *,
    dreamer: Dreamer | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_frame: OnFrame | None = None,
) -> RenderResult:
    """Render a zoom animation into ``output`` from ``image``, or from noise/colour
    (``cfg`` defaults to the ``zoom`` preset)."""
    return render_zoom(
        cfg or load_preset("zoom"),
        image,
        output,
        dreamer=dreamer,
        resume=resume,
        overwrite=overwrite,
        on_frame=on_frame,
    )
