"""Where I/O meets tensors: load the network once, then dream pictures, galleries and clips."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamvideo import __version__
from dreamvideo.ascent import AscentParams, dream, resize, steps_for
from dreamvideo.config import Config, DreamConfig
from dreamvideo.decode import read_image
from dreamvideo.encode import check_image_output, write_image
from dreamvideo.errors import UserError
from dreamvideo.models import Backbone, load_backbone
from dreamvideo.objectives import Objective, parse_objective

Progress = Callable[[int], None]  # called with how many ascent steps just finished


def pick_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; an unusable device is a :class:`UserError`."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device {spec!r}: CUDA is not available on this machine; "
                            "use --device cpu or --device auto")
        index = int(spec.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise UserError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s); "
                            f"use cuda:0..cuda:{torch.cuda.device_count() - 1}")
    return torch.device(spec)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The forward's autocast dtype: bf16 on CUDA by default (fp16 where bf16 is missing)."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(H,W,3)`` uint8 RGB -> ``(1,3,H,W)`` float32 in ``[0,1]`` on ``device``."""
    t = torch.from_numpy(np.ascontiguousarray(rgb)).to(device, non_blocking=True)
    return t.permute(2, 0, 1)[None].float().div_(255.0)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """``(1,3,H,W)`` float in ``[0,1]`` -> ``(H,W,3)`` uint8 RGB on the host."""
    return img[0].mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def resize_rgb(rgb: np.ndarray, width: int | None) -> np.ndarray:
    """Scale ``(H,W,3)`` uint8 to ``width`` pixels wide (aspect kept); ``None`` keeps it."""
    if not width or width == rgb.shape[1]:
        return rgb
    height = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
    t = resize(torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), (height, width))
    return t[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


@dataclass
class Dreamer:
    """A loaded network and an objective, ready to dream images on one device.

    ``net`` is ``full`` cut after the objective's deepest layer (the weights are shared).
    """

    full: Backbone
    channels: dict[str, int]  # layer -> channel count, for validating objectives
    guide: Callable[[str], torch.Tensor] | None  # layer -> (C, N) guide-picture features
    objective: Objective
    net: Backbone
    params: AscentParams
    device: torch.device
    autocast: torch.dtype | None
    seed: int

    @classmethod
    def from_config(cls, cfg: DreamConfig, allow_download: bool = True) -> Dreamer:
        device = pick_device(cfg.device)
        full = load_backbone(cfg.model, cfg.weights, device, allow_download=allow_download)
        full.use_channels_last()
        channels = {info.name: info.channels for info in full.layer_table()}
        guide = None
        if cfg.guide is not None:
            rgb = read_image(cfg.guide)
            small = to_tensor(resize_rgb(rgb, round(rgb.shape[1] * min(1, 512 / max(rgb.shape))
                                                    )), device)

            def guide(layer: str) -> torch.Tensor:
                with torch.no_grad():
                    return full(small, [layer])[layer][0].flatten(1).float()

        obj = parse_objective(cfg.layers, channels, guide)
        params = AscentParams(octaves=cfg.octaves, octave_scale=cfg.octave_scale,
                              iterations=cfg.iterations, step=cfg.step, jitter=cfg.jitter,
                              normalize=cfg.normalize, tile=cfg.tile)
        return cls(full, channels, guide, obj, full.truncated(obj.layers), params, device,
                   autocast_dtype(device, cfg.precision), cfg.seed)

    def parse(self, text: str) -> Objective:
        """An objective in text form, checked against this network's layers and channels."""
        return parse_objective(text, self.channels, self.guide)

    def with_objective(self, objective: Objective) -> Dreamer:
        """The same network and settings, maximizing ``objective`` instead."""
        return replace(self, objective=objective, net=self.full.truncated(objective.layers))

    def steps(self, height: int, width: int, params: AscentParams | None = None) -> int:
        return steps_for(height, width, params or self.params)

    def __call__(self, img: torch.Tensor, params: AscentParams | None = None,
                 progress: Progress | None = None) -> torch.Tensor:
        """Dream ``(1,3,H,W)`` float ``[0,1]``; the jitter sequence restarts from ``seed``."""
        gen = torch.Generator().manual_seed(self.seed)
        step = (lambda: progress(1)) if progress else None
        return dream(img, self.net, self.objective, params or self.params, gen,
                     autocast=self.autocast, on_step=step)

    def score(self, img: torch.Tensor) -> float:
        """The objective's value on ``img`` (one forward, no gradient)."""
        with torch.no_grad():
            return float(self.objective(self.net(img, self.objective.layers)).sum())


def run_metadata(cfg: Config, source: str | Path | None, **extra: Any) -> dict[str, Any]:
    """What goes into an output file so the render can be reproduced."""
    return {"dreamvideo": __version__, "source": str(source) if source else None,
            "config": cfg.to_dict(), **extra}


@dataclass(frozen=True)
class ImageResult:
    seconds: float
    objective_before: float
    objective_after: float
    size: tuple[int, int]  # (width, height)


def render_image(cfg: Config, source: str | Path, output: str | Path,
                 width: int | None = None, start: Callable[[int], Progress] | None = None
                 ) -> ImageResult:
    """Dream the picture ``source`` into ``output``.

    ``start(total_steps)`` is called once the work is known and returns the progress callback.
    """
    check_image_output(output)
    rgb = resize_rgb(read_image(source), width)
    dreamer = Dreamer.from_config(cfg.dream)
    t0 = time.perf_counter()
    x = to_tensor(rgb, dreamer.device)
    progress = start(dreamer.steps(*rgb.shape[:2])) if start else None
    out = dreamer(x, progress=progress)
    seconds = time.perf_counter() - t0
    write_image(output, to_uint8(out), run_metadata(cfg, source, width=width))
    return ImageResult(seconds, dreamer.score(x), dreamer.score(out), (rgb.shape[1], rgb.shape[0]))


def render_gallery(cfg: Config, source: str | Path, output: str | Path,
                   layers: Sequence[str] | None = None, size: int = 256, columns: int = 0,
                   start: Callable[[int], Progress] | None = None) -> list[str]:
    """Dream ``source`` once per layer (default: every layer) into a labelled contact sheet."""
    from dreamvideo.encode import contact_sheet

    check_image_output(output)
    rgb = read_image(source)
    rgb = resize_rgb(rgb, round(rgb.shape[1] * min(1.0, size / max(rgb.shape[:2]))))
    dreamer = Dreamer.from_config(cfg.dream)
    names = list(layers) if layers else dreamer.full.names
    objectives = [dreamer.parse(name) for name in names]  # every name checked before work
    x = to_tensor(rgb, dreamer.device)
    progress = start(dreamer.steps(*rgb.shape[:2]) * len(names)) if start else None
    tiles = [(name, to_uint8(dreamer.with_objective(obj)(x, progress=progress)))
             for name, obj in zip(names, objectives, strict=True)]
    write_image(output, contact_sheet(tiles, columns), run_metadata(cfg, source, layers=names))
    return names
