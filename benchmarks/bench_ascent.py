"""Seconds per ascent step and achieved FLOP/s against this machine's matmul peak (same run).

    python benchmarks/bench_ascent.py [--size 512] [--layers blocks.10] [--device auto]

Also times one whole `default`-preset picture dream and its objective gain, the figures the
README quotes.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from dreamvideo.ascent import gradient, normalize_gradient
from dreamvideo.pipeline import Dreamer, pick_device, to_tensor
from dreamvideo.presets import load_preset


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, n: int = 2048, repeat: int = 10) -> float:
    """Best fp32 matmul FLOP/s of ``n`` x ``n`` products (the roofline for convolutions)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeat):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def step_cost(dreamer: Dreamer, x: torch.Tensor) -> float:
    """FLOPs of one ascent step (forward + backward of the truncated network)."""
    x = x.detach().requires_grad_(True)
    with FlopCounterMode(display=False) as counter:
        dreamer.objective(dreamer.net(x, dreamer.objective.layers)).sum().backward()
    return float(counter.get_total_flops())


def time_steps(dreamer: Dreamer, x: torch.Tensor, repeat: int) -> float:
    """Median seconds of one step: gradient, normalization and update."""
    times = []
    for _ in range(repeat + 1):
        sync(x.device)
        t = time.perf_counter()
        g, _ = gradient(dreamer.net, dreamer.objective, x, autocast=dreamer.autocast)
        x = (x + 2 / 255 * normalize_gradient(g, dreamer.params.normalize)).clamp(0, 1)
        sync(x.device)
        times.append(time.perf_counter() - t)
    return sorted(times[1:])[len(times[1:]) // 2]  # first step warms caches; median of rest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--layers", default=None, help="objective (default: the default preset's)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    cfg = load_preset("default").override("dream", device=args.device, layers=args.layers)
    device = pick_device(cfg.dream.device)
    dreamer = Dreamer.from_config(cfg.dream)
    import skimage.data

    from dreamvideo.pipeline import resize_rgb

    rgb = resize_rgb(skimage.data.astronaut(), args.size)
    x = to_tensor(rgb, device)

    peak = matmul_peak(device)
    flops = step_cost(dreamer, x)
    seconds = time_steps(dreamer, x, args.repeat)
    sync(device)
    t = time.perf_counter()
    out = dreamer(x)
    sync(device)
    whole = time.perf_counter() - t
    gain = dreamer.score(out) / dreamer.score(x)

    threads = torch.get_num_threads()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{threads} threads"
    print(f"device: {device} ({name}), torch {torch.__version__}")
    rows = [
        ("matmul peak (2048x2048 fp32)", f"{peak / 1e9:.1f} GFLOP/s"),
        (f"ascent step {args.size}x{args.size} {cfg.dream.layers}", f"{seconds:.3f} s"),
        ("  work per step (fwd+bwd)", f"{flops / 1e9:.2f} GFLOP"),
        ("  achieved", f"{flops / seconds / 1e9:.1f} GFLOP/s = {100 * flops / seconds / peak:.0f}% "
                       "of matmul peak"),
        (f"default preset, whole {rgb.shape[1]}x{rgb.shape[0]} dream",
         f"{whole:.1f} s, {dreamer.steps(*rgb.shape[:2])} steps"),
        ("  objective gain (output / input)", f"{gain:.2f}x"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
