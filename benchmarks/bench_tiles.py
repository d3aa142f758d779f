"""Tiled gradients against whole-image ones: time per ascent step, agreement, and the input
shapes the network sees (one per picture size is what lets a GPU tune each shape once).

    python benchmarks/bench_tiles.py [--sizes 1280x720 1920x1080 3840x2160] [--tile 1024]
                                     [--steps 4] [--device auto]

The `video` preset's objective on astronaut.jpg scaled to each size. Each step draws new
seam positions (as the ascent does); the table gives the median step, whole and tiled, the
tiled step's cosine similarity to the whole-image gradient (lowest over the steps), and the
windows per step and distinct window shapes over all steps.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from common import machine, sync, table

from dreamvideo.engine import gradient, pick_device, to_tensor
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["1280x720", "1920x1080", "3840x2160"])
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = pick_device(args.device)
    d = dreamer_for(load_preset("video").override("dream", device=args.device).dream)
    print(f"machine: {machine(device)}\n")
    picture = cv2.cvtColor(cv2.imread(str(SAMPLES / "astronaut.jpg")), cv2.COLOR_BGR2RGB)
    shapes: list[tuple[int, ...]] = []
    d.net.register_forward_pre_hook(lambda m, a: shapes.append(tuple(a[0].shape)))
    rows = []
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        x = to_tensor(np.ascontiguousarray(cv2.resize(picture, (w, h))), device)

        def timed(tile: int, seed: int, x=x) -> tuple[float, torch.Tensor]:
            sync(device)
            t = time.perf_counter()
            g, _ = gradient(d.net, d.objective, x, tile=tile, autocast=d.autocast,
                            generator=torch.Generator().manual_seed(seed))  # fmt: skip
            sync(device)
            return time.perf_counter() - t, g

        timed(0, 0)  # warm-up (on a GPU: the tuning of each shape)
        whole_runs = [timed(0, s) for s in range(args.steps)]
        whole = whole_runs[0][1]
        timed(args.tile, 0)
        shapes.clear()
        tiled_runs = [timed(args.tile, s) for s in range(args.steps)]
        cos = min(
            torch.nn.functional.cosine_similarity(
                g.double().flatten(), whole.double().flatten(), dim=0
            ).item()
            for _, g in tiled_runs
        )
        t_whole = statistics.median(t for t, _ in whole_runs)
        t_tiled = statistics.median(t for t, _ in tiled_runs)
        rows.append([
            f"{w}x{h}", f"{t_whole * 1000:.0f}", f"{t_tiled * 1000:.0f}",
            f"{t_tiled / t_whole:.2f}x", f"{cos:.4f}", str(len(shapes) // args.steps),
            str(len(set(shapes))),
        ])  # fmt: skip
        print(" | ".join(rows[-1]), flush=True)
    print()
    print(table(["frame", "whole step ms", f"tiled ({args.tile}) ms", "tiled / whole",
                 "agreement (cos)", "windows per step", "window shapes"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
