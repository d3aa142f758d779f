"""The loaded network, its objective and the ascent settings: built once per run (or once per
worker) and handed to every render. Built from plain arguments; ``render.network`` builds it
from a config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from dreamvideo.engine.ascent import (
    AscentParams,
    Regions,
    dream,
    objective_total,
    resize,
    steps_for,
)
from dreamvideo.engine.device import autocast_dtype, pick_device, to_tensor
from dreamvideo.engine.lanes import Lockstep
from dreamvideo.engine.models import Backbone, load_backbone
from dreamvideo.engine.objectives import Objective, parse_objective
from dreamvideo.names import DEFAULT_MODEL

Progress = Callable[[int], None]  # called with how many ascent steps just finished
GUIDE_SIDE = 512  # pixels: the guide picture's features are taken at this size at most


@dataclass(frozen=True)
class Network:
    """What decides the loaded network: two renders with the same one share it."""

    model: str = DEFAULT_MODEL
    weights: str | None = None  # state-dict file; None = the bundled or cached weights
    guide: str | None = None  # names the guide picture (its pixels come to Dreamer.load)
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:N", "mps"
    precision: str = "auto"  # forward precision: "auto", "fp32", "bf16", "fp16"
    threads: int = 0  # CPU threads for torch; 0 = torch's default


@dataclass(frozen=True)
class Build:
    """How the network is prepared. Every switch is on (or off) for speed; they are arguments
    so that benchmarks can measure what each one gains."""

    fold_batchnorm: bool = True  # fold each BatchNorm into its convolution (same outputs)
    channels_last: bool = True  # NHWC weights and inputs
    compile: bool = False  # torch.compile the network cut for the objective


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
    network: Network  # what it was loaded from
    build: Build = Build()
    region_names: tuple[str, ...] = ()  # the regions objectives may name (dream.regions)
    # a lane's dreamer hands its ascents to the lanes' lockstep (dreamvideo.engine.lanes)
    lockstep: Lockstep | None = None

    @classmethod
    def load(
        cls,
        network: Network,
        layers: str,
        params: AscentParams,
        seed: int = 0,
        guide_picture: np.ndarray | None = None,
        build: Build = Build(),  # noqa: B008 (frozen)
        regions: tuple[str, ...] = (),
    ) -> Dreamer:
        """Load ``network`` (slow: once per run) to maximize the objective ``layers``.
        ``guide_picture``: ``(H,W,3)`` uint8, the picture ``network.guide`` names;
        ``regions``: the region names the objective may use."""
        if (network.guide is None) != (guide_picture is None):
            raise ValueError("a guide picture goes with network.guide, and only with it")
        if network.threads:  # process-wide: a render owns its process
            torch.set_num_threads(network.threads)
        device = pick_device(network.device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # octave and tile shapes repeat every frame
        full = load_backbone(
            network.model, network.weights, device, fold_batchnorm=build.fold_batchnorm
        )
        if build.channels_last:
            full.use_channels_last()
        channels = {info.name: info.channels for info in full.layer_table()}
        full.strides()  # probed now, before any render: the cuts share them
        guide = None
        if guide_picture is not None:
            x = to_tensor(guide_picture, device)
            f = min(1.0, GUIDE_SIDE / max(x.shape[-2:]))
            small = resize(x, (max(1, round(x.shape[2] * f)), max(1, round(x.shape[3] * f))))

            def guide(layer: str) -> torch.Tensor:
                with torch.no_grad():
                    return full(small, [layer])[layer][0].flatten(1).float()

        dreamer = cls(
            full,
            channels,
            guide,
            parse_objective(layers, channels, guide, regions),
            full,
            params,
            device,
            autocast_dtype(device, network.precision),
            seed,
            network,
            build,
            regions,
        )
        return dreamer.with_objective(dreamer.objective)

    def retarget(
        self, layers: str, params: AscentParams, seed: int, regions: tuple[str, ...] = ()
    ) -> Dreamer:
        """The same loaded network with another objective, ascent, seed and region names (no
        reload)."""
        named = replace(self, region_names=regions)
        return replace(named.with_objective(named.parse(layers)), params=params, seed=seed)

    def parse(self, text: str) -> Objective:
        """An objective in text form, checked against this network's layers and channels and
        the region names it was given."""
        return parse_objective(text, self.channels, self.guide, self.region_names)

    def with_objective(self, objective: Objective) -> Dreamer:
        """The same network and settings, maximizing ``objective`` instead."""
        return replace(self, objective=objective, net=self.cut(objective.layers))

    def cut(self, layers: frozenset[str]) -> Backbone:
        """The network cut after the deepest of ``layers`` (compiled when the build asks)."""
        net = self.full.truncated(layers)
        return torch.compile(net, dynamic=True) if self.build.compile else net  # type: ignore[return-value]

    def in_lanes(self, lockstep: Lockstep) -> Dreamer:
        """This dreamer for one lane: its ascents run in batches with the other lanes'."""
        return replace(self, lockstep=lockstep)

    def alone(self) -> Dreamer:
        """This dreamer, dreaming by itself (not in a lane)."""
        return replace(self, lockstep=None)

    def steps(self, height: int, width: int, params: AscentParams | None = None) -> int:
        return steps_for(height, width, params or self.params)

    def __call__(
        self,
        img: torch.Tensor,
        params: AscentParams | None = None,
        progress: Progress | None = None,
        step_map: torch.Tensor | None = None,
        pull: tuple[torch.Tensor, torch.Tensor] | None = None,
        regions: Regions | None = None,
    ) -> torch.Tensor:
        """Dream ``(1,3,H,W)`` float ``[0,1]``; the jitter sequence restarts from ``seed``.
        ``step_map``, ``pull`` and ``regions``: see :func:`dreamvideo.engine.ascent.dream`.
        In a lane the ascent waits for the other lanes' and runs in their batch."""
        if self.lockstep is not None:
            return self.lockstep.dream(
                self, img, params or self.params, step_map, pull, regions, progress
            )
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
            regions=regions,
        )

    def score(self, img: torch.Tensor, regions: Regions | None = None) -> float:
        """The objective's value on ``img`` (no gradient; cut into the ascent's tiles)."""
        return float(
            objective_total(self.net, self.objective, img, tile=self.params.tile, regions=regions)
        )
