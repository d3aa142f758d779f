"""The loaded network, its objective and the ascent settings: built once per run (or once per
worker) and handed to every render."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from dreamvideo.ascent import AscentParams, dream, steps_for
from dreamvideo.config import DreamConfig
from dreamvideo.device import autocast_dtype, pick_device, to_tensor
from dreamvideo.images import read_image, resize_rgb
from dreamvideo.models import Backbone, load_backbone
from dreamvideo.objectives import Objective, parse_objective

Progress = Callable[[int], None]  # called with how many ascent steps just finished
# settings that decide the loaded network itself; the others can change without a reload
_NETWORK_KEYS = ("model", "weights", "guide", "device", "precision", "threads")


def ascent_params(cfg: DreamConfig) -> AscentParams:
    """The ascent settings of a dream section."""
    return AscentParams(
        octaves=cfg.octaves,
        octave_scale=cfg.octave_scale,
        iterations=cfg.iterations,
        step=cfg.step,
        jitter=cfg.jitter,
        normalize=cfg.normalize,
        tile=cfg.tile,
    )


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
    config: DreamConfig  # what it was built from

    @classmethod
    def from_config(cls, cfg: DreamConfig) -> Dreamer:
        """Load the network ``cfg`` names and parse its objective (slow: once per run)."""
        if cfg.threads:  # process-wide: a render owns its process
            torch.set_num_threads(cfg.threads)
        device = pick_device(cfg.device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # octave shapes repeat every frame
        full = load_backbone(cfg.model, cfg.weights, device)
        full.use_channels_last()
        channels = {info.name: info.channels for info in full.layer_table()}
        guide = None
        if cfg.guide is not None:
            rgb = read_image(cfg.guide)
            small = to_tensor(
                resize_rgb(rgb, round(rgb.shape[1] * min(1, 512 / max(rgb.shape)))), device
            )

            def guide(layer: str) -> torch.Tensor:
                with torch.no_grad():
                    return full(small, [layer])[layer][0].flatten(1).float()

        obj = parse_objective(cfg.layers, channels, guide)
        params = ascent_params(cfg)
        return cls(
            full,
            channels,
            guide,
            obj,
            full.truncated(obj.layers),
            params,
            device,
            autocast_dtype(device, cfg.precision),
            cfg.seed,
            cfg,
        )

    @classmethod
    def reuse(cls, dreamer: Dreamer | None, cfg: DreamConfig) -> Dreamer:
        """``dreamer`` set up for ``cfg``: its loaded network is kept when ``cfg`` names the
        same model, weights, guide, device and precision (objective, ascent settings and seed
        may differ); otherwise, or without one, a new one is loaded."""
        if dreamer is None or any(
            getattr(dreamer.config, k) != getattr(cfg, k) for k in _NETWORK_KEYS
        ):
            return cls.from_config(cfg)
        obj = dreamer.parse(cfg.layers)
        params = ascent_params(cfg)
        return replace(
            dreamer,
            objective=obj,
            net=dreamer.full.truncated(obj.layers),
            params=params,
            seed=cfg.seed,
            config=cfg,
        )

    def parse(self, text: str) -> Objective:
        """An objective in text form, checked against this network's layers and channels."""
        return parse_objective(text, self.channels, self.guide)

    def with_objective(self, objective: Objective) -> Dreamer:
        """The same network and settings, maximizing ``objective`` instead."""
        return replace(self, objective=objective, net=self.full.truncated(objective.layers))

    def steps(self, height: int, width: int, params: AscentParams | None = None) -> int:
        return steps_for(height, width, params or self.params)

    def __call__(
        self,
        img: torch.Tensor,
        params: AscentParams | None = None,
        progress: Progress | None = None,
        step_map: torch.Tensor | None = None,
        pull: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Dream ``(1,3,H,W)`` float ``[0,1]``; the jitter sequence restarts from ``seed``.
        ``step_map`` and ``pull``: see :func:`dreamvideo.ascent.dream`."""
        gen = torch.Generator().manual_seed(self.seed)
        step = (lambda: progress(1)) if progress else None
        return dream(
            img,
            self.net,
            self.objective,
            params or self.params,
            gen,
            autocast=self.autocast,
            step_map=step_map,
            on_step=step,
            pull=pull,
        )

    def score(self, img: torch.Tensor) -> float:
        """The objective's value on ``img`` (one forward, no gradient)."""
        with torch.no_grad():
            return float(self.objective(self.net(img, self.objective.layers)).sum())
