"""The DeepDream core: octave pyramid, jitter, normalized gradient ascent, tiled gradients.

Tensors in, tensors out. Images are ``(1,3,H,W)`` float32 in ``[0,1]`` on the model's device.
The random generator is passed in (a CPU ``torch.Generator``, so the same seed draws the same
jitter on every device).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from dreamvideo.engine.device import blur
from dreamvideo.engine.models import Backbone
from dreamvideo.engine.objectives import Objective, Window, region_feature

Regions = Mapping[str, torch.Tensor]  # region name -> (1,1,H,W) matte in [0,1] of the image

MIN_OCTAVE_SIDE = 80  # coarser octaves than this say nothing (and inception_v3 needs >= 75 px)


@dataclass(frozen=True)
class AscentParams:
    """Settings of one ascent (see :class:`dreamvideo.config.DreamConfig` for their meaning)."""

    octaves: int
    octave_scale: float
    iterations: int
    step: float  # 0..255 pixel units per iteration
    jitter: int  # pixels
    normalize: str  # "mean" or "laplacian"
    tile: int  # pixels; 0 = never tile
    lap_levels: int = 4
    # the picture is this many times the size whose look the octaves give (dream.upscale):
    # the octaves keep their sizes relative to that look and finer ones run up to the picture's
    upscale: float = 1.0

    @property
    def octave_count(self) -> int:
        """Octaves to run: ``octaves``, and one more per ``octave_scale`` step of the upscale."""
        return self.octaves + round(math.log(self.upscale) / math.log(self.octave_scale))


def _check_image(img: torch.Tensor) -> None:
    if img.ndim != 4 or img.shape[1] != 3 or img.shape[0] < 1:
        raise ValueError(f"expected a (1,3,H,W) image (or a batch of them), got {tuple(img.shape)}")
    if not img.is_floating_point():
        raise ValueError(f"expected a float image in [0,1], got {img.dtype}")


def resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(B,C,H,W)`` to ``size`` = (h, w), antialiased when shrinking."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    shrink = size[0] < img.shape[-2] or size[1] < img.shape[-1]
    return F.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Image sizes from coarsest to finest; the last is ``(height, width)``.

    Octaves whose short side would fall under ``MIN_OCTAVE_SIDE`` are skipped.
    """
    sizes = []
    for i in range(octaves - 1, 0, -1):
        f = scale**-i
        h, w = round(height * f), round(width * f)
        if min(h, w) >= MIN_OCTAVE_SIDE:
            sizes.append((h, w))
    return [*sizes, (height, width)]


# --------------------------------------------------------------------------- normalization

BINOMIAL = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)  # 5 taps: the Laplacian pyramid's


def _blur(x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    return blur(x, BINOMIAL, stride)


def _upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return _blur(F.interpolate(x, size=size, mode="bilinear", align_corners=False))


def _per_image(x: torch.Tensor, stat: Callable[..., torch.Tensor]) -> torch.Tensor:
    """``stat`` (``torch.std``, ``torch.mean``) of each image of the batch ``x``:
    ``(B,1,1,1)``, so that a batch of lanes is normalized as each image alone would be."""
    return stat(x.flatten(1), dim=1).view(-1, 1, 1, 1)


def laplacian_normalize(g: torch.Tensor, levels: int = 4, eps: float = 1e-8) -> torch.Tensor:
    """Split ``g`` ``(B,C,H,W)`` into ``levels`` frequency bands, scale each to unit std (per
    image), recombine.

    Balances fine and coarse structure (TensorFlow's lapnorm): patterns come out smoother
    and larger than with plain ``g / mean|g|``.
    """
    bands, cur = [], g
    for _ in range(levels - 1):
        if min(cur.shape[-2:]) < 8:
            break
        low = _blur(cur, stride=2)
        bands.append(cur - _upsample(low, cur.shape[-2:]))
        cur = low
    bands.append(cur)
    out = bands[-1] / (_per_image(bands[-1], torch.std) + eps)
    for band in reversed(bands[:-1]):
        out = _upsample(out, band.shape[-2:]) + band / (_per_image(band, torch.std) + eps)
    return out


# dreamvideo.names.NORMALIZATIONS -> how the gradient's bands are balanced before scaling
NORMALIZATIONS = {"mean": lambda g, levels: g, "laplacian": laplacian_normalize}


def normalize_gradient(g: torch.Tensor, method: str, levels: int = 4) -> torch.Tensor:
    """``g`` ``(B,C,H,W)`` scaled so one step moves each image's pixels by about one unit on
    average."""
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown gradient normalization {method!r}")
    g = NORMALIZATIONS[method](g, levels)
    return g / (_per_image(g.abs(), torch.mean) + 1e-8)


# --------------------------------------------------------------------------- gradients


def objective_value(
    net: Backbone,
    objective: Objective,
    x: torch.Tensor,
    autocast: torch.dtype | None,
    crop: Callable[[str, torch.Tensor], tuple[torch.Tensor, Window]] | None,
    regions: Regions | None = None,
) -> torch.Tensor:
    """The objective's value on ``x``; ``regions``: mattes of the same size as ``x``, taken
    to each layer's size (and crop) for the objective's region terms."""
    with torch.autocast(
        x.device.type, dtype=autocast or torch.float32, enabled=autocast is not None
    ):
        feats = net(x, objective.layers)
    for name in objective.regions:
        if regions is None or name not in regions:
            raise ValueError(f"the objective reads region {name!r}, which was not given")
        for layer_name in objective.layers:
            feats[region_feature(layer_name, name)] = resize(
                regions[name].to(x.dtype), tuple(feats[layer_name].shape[-2:])
            )
    windows: dict[str, Window] = {}
    if crop is not None:
        for name, a in list(feats.items()):
            feats[name], windows[name] = crop(name.partition("@")[0], a)
    return objective(feats, windows).sum()


SEAM_STEPS = 1 << 16  # the seams' random offsets: this many positions in [0, 1)


def tile_spans(
    n: int, tile: int, halo: int, align: int, u: float
) -> tuple[int, list[tuple[int, int, int]]]:
    """How tiles cover ``[0, n)`` pixels along one side: the length of every tile's window
    and, per tile, the span it owns ``[start, end)`` and where its window starts.

    All windows have one length (the network sees one shape per octave, so a GPU tunes its
    convolutions once, not every step) and lie inside the picture, so an edge tile sees the
    picture's own border, as the whole picture does. Spans and window starts fall on
    ``align`` (the deepest layer's stride) so every tile's feature cells are the picture's.
    A side that fits ``tile`` plus the halo on both sides is one window. Otherwise the owned
    spans are ``span`` <= ``tile`` long but for the first and the last, and every seam has
    ``halo`` of context in both neighbours; ``u`` in [0, 1) moves the seams (by whole
    cells, over at least ``halo``) so that what is left of them moves every step.
    """
    if n <= tile + 2 * halo:
        return n, [(0, n, 0)]
    count = math.ceil((n - halo) / tile)
    span = math.ceil((n - halo) / count / align) * align
    size = span + 2 * halo
    size += (n - size) % align  # the last window, ending at n, starts on a cell
    slack = count * span + 2 * halo - n  # >= halo: how far the seams can move
    # the first span is span + halo - offset long, the last span + halo - slack + offset
    lo = max(0, -(-(slack - span - halo + 1) // align))
    hi = max(lo, min(slack // align, (span + halo) // align - 1))
    first = span + halo - (lo + math.floor(u * (hi - lo + 1))) * align
    bounds = [0, *(first + k * span for k in range(count - 1)), n]
    return size, [
        (a, b, 0 if k == 0 else min(max(0, a - halo), n - size))
        for k, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]


def gradient(
    net: Backbone,
    objective: Objective,
    img: torch.Tensor,
    *,
    tile: int = 0,
    generator: torch.Generator | None = None,
    autocast: torch.dtype | None = None,
    halo: int | None = None,
    regions: Regions | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of ``objective`` w.r.t. ``img`` ``(1,3,H,W)``, and its value (0-dim tensor).
    ``regions``: ``(1,1,H,W)`` mattes for the objective's region terms (cut with the tiles).

    With ``tile`` > 0 and a larger image the gradient is computed tile by tile: each tile owns
    a block of feature cells and is run with a halo of context around it, and the objective
    counts only its own cells, so tiles add up to nearly the whole-image gradient (exactly,
    where the receptive field fits the halo) with memory bounded by the tile size plus the
    halo. The windows have one size per picture size (:func:`tile_spans`) and the seams move
    every step, drawn from ``generator``.
    """
    _check_image(img)
    if not _tiled(img, tile):
        x = img.detach().requires_grad_(True)
        value = objective_value(net, objective, x, autocast, None, regions)
        (g,) = torch.autograd.grad(value, x)
        return g, value.detach()
    # integers of a CPU generator: no sync, and nothing of the picture is read back
    drawn = torch.randint(0, SEAM_STEPS, (2,), generator=generator).tolist()
    seams = (drawn[0] / SEAM_STEPS, drawn[1] / SEAM_STEPS)
    g = torch.zeros_like(img)
    value = img.new_zeros(())
    for window, crop in tiles(net, objective, img.shape[-2:], tile, halo, seams):
        x = img[window].detach().requires_grad_(True)
        cut = {n: r[window] for n, r in regions.items()} if regions else None
        v = objective_value(net, objective, x, autocast, crop, cut)
        (gt,) = torch.autograd.grad(v, x)
        g[window] += gt
        value = value + v.detach()
    return g, value


def objective_total(
    net: Backbone,
    objective: Objective,
    img: torch.Tensor,
    *,
    tile: int = 0,
    autocast: torch.dtype | None = None,
    regions: Regions | None = None,
) -> torch.Tensor:
    """The objective's value on ``img`` (no gradient), tile by tile where :func:`gradient`
    tiles (the same window shapes, and memory bounded the same way)."""
    with torch.no_grad():
        if not _tiled(img, tile):
            return objective_value(net, objective, img, autocast, None, regions)
        value = img.new_zeros(())
        for window, crop in tiles(net, objective, img.shape[-2:], tile, None, (0.0, 0.0)):
            cut = {n: r[window] for n, r in regions.items()} if regions else None
            value = value + objective_value(net, objective, img[window], autocast, crop, cut)
        return value


def _tiled(img: torch.Tensor, tile: int) -> bool:
    return bool(tile) and (img.shape[-2] > tile or img.shape[-1] > tile)


Crop = Callable[[str, torch.Tensor], tuple[torch.Tensor, Window]]


def tiles(
    net: Backbone,
    objective: Objective,
    size: tuple[int, int],
    tile: int,
    halo: int | None,
    seams: tuple[float, float],
) -> Iterator[tuple[tuple[Any, slice, slice], Crop]]:
    """The windows that cut an image of ``size`` = (h, w) into tiles (see :func:`gradient`):
    each as an index of the image (``img[window]``) and the crop that keeps the feature
    cells the tile owns. ``seams``: where the seams fall, each in [0, 1) (see
    :func:`tile_spans`)."""
    h, w = size
    strides = net.strides()
    align = max(strides[n] for n in objective.layers)  # tiles own whole feature cells
    tile = max(align, tile // align * align)
    # 6 cells of the deepest layer keep tiled gradients within ~3% of whole-image ones
    halo = 6 * align if halo is None else math.ceil(halo / align) * align
    (rh, rows), (rw, cols) = (
        tile_spans(n, tile, halo, align, u) for n, u in ((h, seams[0]), (w, seams[1]))
    )
    for y0, y1, ry0 in rows:
        for x0, x1, rx0 in cols:

            def crop(
                name: str, a: torch.Tensor, y0=y0, y1=y1, x0=x0, x1=x1, ry0=ry0, rx0=rx0
            ) -> tuple[torch.Tensor, Window]:
                s = strides[name]
                fy0, fx0 = (y0 - ry0) // s, (x0 - rx0) // s
                # the last span owns the map up to its end (sizes need not divide the stride)
                fy1 = a.shape[2] if y1 == h else (y1 - ry0) // s
                fx1 = a.shape[3] if x1 == w else (x1 - rx0) // s
                win = Window(y0 // s, x0 // s, math.ceil(h / s), math.ceil(w / s))
                return a[:, :, fy0:fy1, fx0:fx1], win

            yield (Ellipsis, slice(ry0, ry0 + rh), slice(rx0, rx0 + rw)), crop


# --------------------------------------------------------------------------- the ascent


def dream(
    img: torch.Tensor,
    net: Backbone,
    objective: Objective,
    params: AscentParams,
    generator: torch.Generator,
    *,
    autocast: torch.dtype | None = None,
    step_map: torch.Tensor | None = None,
    on_step: Callable[[], None] | None = None,
    pull: tuple[torch.Tensor, torch.Tensor] | None = None,
    regions: Regions | None = None,
) -> torch.Tensor:
    """DeepDream ``img`` ``(1,3,H,W)`` float in ``[0,1]``; returns the same shape and range.

    Octaves run coarse to fine; what each octave added (its detail) is upscaled onto the
    next octave's base. Each step rolls the image by a random offset (jitter), adds
    ``step/255 * normalized gradient`` and clips to ``[0,1]``. ``step_map`` ``(1,1,H,W)``
    (values in ``[0,1]``) scales the step per pixel, e.g. to touch up carried-over video
    pixels gently while dreaming new ones fully. ``on_step`` is called after every step
    (progress bars); nothing here forces a device sync. ``pull`` = ``(target (1,3,H,W),
    weight (1,1,H,W))`` adds a temporal term: each step also moves every pixel back towards
    ``target`` by ``weight`` of the way (a gradient step on ``weight/2 * |x - target|^2``), so
    a video frame's touch-up cannot wander far from the motion-warped previous dream.
    ``regions``: ``(1,1,H,W)`` mattes of the objective's region terms; they are resized with
    each octave and rolled with the jitter, so they stay on the picture's own pixels.

    A batch ``(B,3,H,W)`` (lanes: see :mod:`dreamvideo.engine.lanes`) is dreamed image by
    image as if each were alone, with the same jitter: the objective sums over the images,
    so each gets its own gradient, and the gradients are normalized per image; ``step_map``,
    ``pull`` and the mattes then have B images too (or 1, for all).
    """
    _check_image(img)
    img = img.detach().float()
    sizes = octave_sizes(img.shape[2], img.shape[3], params.octave_count, params.octave_scale)
    detail = torch.zeros_like(resize(img, sizes[0]))
    x = img
    for size in sizes:
        base = resize(img, size)
        x = (base + resize(detail, size)).clamp(0, 1)
        step = params.step / 255.0 * (resize(step_map, size) if step_map is not None else 1.0)
        target, weight = (resize(pull[0], size), resize(pull[1], size)) if pull else (None, None)
        mattes = {n: resize(r, size) for n, r in (regions or {}).items()}
        for _ in range(params.iterations):
            dy, dx = (
                torch.randint(-params.jitter, params.jitter + 1, (2,), generator=generator).tolist()
                if params.jitter
                else (0, 0)
            )
            rolled = torch.roll(x, (dy, dx), dims=(2, 3))
            g, _ = gradient(
                net,
                objective,
                rolled,
                tile=params.tile,
                generator=generator,
                autocast=autocast,
                regions={n: torch.roll(r, (dy, dx), dims=(2, 3)) for n, r in mattes.items()},
            )
            g = torch.roll(
                normalize_gradient(g, params.normalize, params.lap_levels), (-dy, -dx), dims=(2, 3)
            )
            x = x + step * g
            if target is not None:
                x = x - weight * (x - target)
            x = x.clamp(0, 1)
            if on_step is not None:
                on_step()
        detail = x - base
    return x


def steps_for(height: int, width: int, params: AscentParams) -> int:
    """How many ascent steps :func:`dream` takes on a ``height`` x ``width`` image."""
    sizes = octave_sizes(height, width, params.octave_count, params.octave_scale)
    return len(sizes) * params.iterations
