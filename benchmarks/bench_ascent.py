"""Seconds per ascent step and achieved FLOP/s against this machine's matmul peak (same run).

    python benchmarks/bench_ascent.py [--size 512] [--layers blocks.10] [--device auto]

Also times one whole `default`-preset picture dream and its objective gain, the figures the
README quotes.
"""

from __future__ import annotations

import argparse
import time

from common import machine, matmul_peak, step_flops, step_seconds, sync

from dreamvideo.engine import pick_device, to_tensor
from dreamvideo.media import resize_rgb
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--layers", default=None, help="objective (default: the default preset's)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    cfg = load_preset("default").override("dream", device=args.device, layers=args.layers)
    device = pick_device(cfg.dream.device)
    dreamer = dreamer_for(cfg.dream)
    import skimage.data

    rgb = resize_rgb(skimage.data.astronaut(), args.size)
    x = to_tensor(rgb, device)

    peak = matmul_peak(device)
    flops = step_flops(dreamer, x)
    seconds = step_seconds(dreamer, x, args.repeat)
    sync(device)
    t = time.perf_counter()
    out = dreamer(x)
    sync(device)
    whole = time.perf_counter() - t
    gain = dreamer.score(out) / dreamer.score(x)

    print(f"device: {device} ({machine(device)})")
    rows = [
        ("matmul peak (2048x2048 fp32)", f"{peak / 1e9:.1f} GFLOP/s"),
        (f"ascent step {args.size}x{args.size} {cfg.dream.layers}", f"{seconds:.3f} s"),
        ("  work per step (fwd+bwd)", f"{flops / 1e9:.2f} GFLOP"),
        (
            "  achieved",
            f"{flops / seconds / 1e9:.1f} GFLOP/s = {100 * flops / seconds / peak:.0f}% "
            "of matmul peak",
        ),
        (
            f"default preset, whole {rgb.shape[1]}x{rgb.shape[0]} dream",
            f"{whole:.1f} s, {dreamer.steps(*rgb.shape[:2])} steps",
        ),
        ("  objective gain (output / input)", f"{gain:.2f}x"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
