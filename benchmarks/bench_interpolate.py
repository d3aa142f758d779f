"""Zoom in-betweens: a looped 60 fps zoom dreamed on every frame against every Nth frame
dreamed and the frames between made from the exact motion (`zoom.interpolate`).

    python benchmarks/bench_interpolate.py [--seconds 6] [--size 256] [--every 3]
                                           [--images coffee.jpg astronaut.jpg]

For each start picture (samples/; coffee.jpg is the one the in-betweens were tuned on) both
renders share one loaded network and write lossless FFV1, so the figures are the frames'
own. Each render runs twice, in the order every, 1 in N, every, 1 in N, and the faster run
counts (this CPU slows down under a long load, which would favour whichever ran first). The
table gives the render time end to end (the network load left out) and after the first
frame (whose full dream is the same in both), the speed-ups, the sharpness (variance of the
Laplacian) of the in-betweens against the median of the dreamed frames of the same file
(lowest and median), and the loop's closing step (last frame to first, mean |difference| in
0..255) beside the range of steps between neighbouring frames.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, sharpness, table

from dreamvideo.media import read_frames
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for, render_zoom

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--fps", type=float, default=60.0)
    ap.add_argument("--every", type=int, default=3)
    ap.add_argument("--images", nargs="+", default=["coffee.jpg", "astronaut.jpg"])
    args = ap.parse_args()
    base = load_preset("zoom").override(
        "zoom", seconds=args.seconds, fps=args.fps, width=args.size, height=args.size, loop=True
    )
    base = base.override("encode", codec="ffv1")
    dreamer = dreamer_for(base.dream)
    print(f"machine: {machine(dreamer.device)}\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.images:
            seconds: dict[int, tuple[float, float]] = {}
            frames = {}
            for n in (1, args.every) * 2:
                out = Path(tmp) / f"{Path(name).stem}-{n}.mkv"
                first: list[float] = []

                def heard(report, first=first):
                    if not first:  # the first frame is dreamed
                        first.append(time.perf_counter())

                t = time.perf_counter()
                render_zoom(
                    base.override("zoom", interpolate=n),
                    SAMPLES / name,
                    out,
                    dreamer=dreamer,
                    overwrite=True,
                    on_frame=heard,
                )
                end = time.perf_counter()
                runs = (end - t, end - first[0])
                seconds[n] = min(seconds.get(n, runs), runs)
                frames[n] = [f.astype(np.float32) for _, f in read_frames(out)]
            for n in (1, args.every):
                f = frames[n]
                steps = [float(np.abs(b - a).mean()) for a, b in zip(f, f[1:], strict=False)]
                seam = float(np.abs(f[0] - f[-1]).mean())
                sharp = [sharpness(x) for x in f]
                # a loop's file starts on a dreamed frame: every nth is one
                keys = float(np.median(sharp[::n]))
                between = [s for i, s in enumerate(sharp) if i % n] or [keys]
                rows.append(
                    [
                        f"{name}, {args.size}x{args.size}, {len(f)} frames at {args.fps:g} fps",
                        "every frame" if n == 1 else f"1 in {n}",
                        f"{seconds[n][0]:.1f} / {seconds[n][1]:.1f}",
                        f"{seconds[1][0] / seconds[n][0]:.2f}x / "
                        f"{seconds[1][1] / seconds[n][1]:.2f}x",
                        "-"
                        if n == 1
                        else f"{min(between) / keys:.2f} / {float(np.median(between)) / keys:.2f}",
                        f"{min(steps):.1f} / {float(np.median(steps)):.1f} / {max(steps):.1f}",
                        f"{seam:.1f}",
                    ]
                )
                print(" | ".join(rows[-1]), flush=True)
    print()
    print(
        table(
            [
                "zoom (`zoom` preset, --loop)",
                "dreamed",
                "seconds: all / after the first frame",
                "speed-up: all / after the first frame",
                "in-between sharpness / dreamed median (min / median)",
                "steps min / median / max",
                "last -> first",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
