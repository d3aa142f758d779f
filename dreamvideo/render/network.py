"""The network a render dreams with, built from the config's ``dream`` section: loaded once,
and reused by the next render whose settings need the same network."""

from __future__ import annotations

from dreamvideo.config import DreamConfig
from dreamvideo.engine.ascent import AscentParams
from dreamvideo.engine.dreamer import Build, Dreamer, Network
from dreamvideo.masks import parse_regions
from dreamvideo.media.images import read_image


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
        upscale=cfg.upscale,
    )


def network_of(cfg: DreamConfig) -> Network:
    """The settings of ``cfg`` that decide the loaded network."""
    return Network(cfg.model, cfg.weights, cfg.guide, cfg.device, cfg.precision, cfg.threads)


def dreamer_for(
    cfg: DreamConfig, reuse: Dreamer | None = None, build: Build | None = None
) -> Dreamer:
    """A dreamer for ``cfg``: ``reuse``'s loaded network when ``cfg`` names the same one
    (model, weights, guide, device, precision, threads; objective, ascent and seed may
    differ), else a newly loaded one (slow), prepared as ``build`` says (default: the
    reused dreamer's build, or every speed-up)."""
    network, params = network_of(cfg), ascent_params(cfg)
    regions = tuple(parse_regions(cfg.regions))
    if reuse is not None and reuse.network == network and build in (None, reuse.build):
        return reuse.retarget(cfg.layers, params, cfg.seed, regions)
    guide = read_image(cfg.guide) if cfg.guide is not None else None
    return Dreamer.load(network, cfg.layers, params, cfg.seed, guide, build or Build(), regions)
