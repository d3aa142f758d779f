"""Two renders side by side on one machine: how many torch threads should each use?

    python benchmarks/bench_threads.py [--frames 24] [--width 240]

Runs the sample clip through `dreamvideo video` twice at once with --threads N for each N
from 1 up to the core count, and once alone with all cores as the reference, in one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def render(out: Path, threads: int, frames: int, width: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dreamvideo",
            "video",
            str(ROOT / "samples" / "astronaut-pan.mp4"),
            "-o",
            str(out),
            "-y",
            "--threads",
            str(threads),
            "--max-frames",
            str(frames),
            "--width",
            str(width),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def timed(jobs: list[tuple[Path, int]], frames: int, width: int) -> float:
    t = time.perf_counter()
    procs = [render(out, n, frames, width) for out, n in jobs]
    if any(p.wait() for p in procs):
        sys.exit("a render failed")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--width", type=int, default=240)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a.mp4", Path(tmp) / "b.mp4"
        alone = timed([(a, cores)], args.frames, args.width)
        rows.append((f"one render alone, {cores} threads", alone, args.frames / alone))
        for n in sorted({1, max(1, cores // 2), cores}):
            both = timed([(a, n), (b, n)], args.frames, args.width)
            rows.append((f"two side by side, {n} thread(s) each", both, 2 * args.frames / both))
    print(f"| {cores} cores, {args.frames} frames at {args.width} px each | wall s | frames/s |")
    print("|---|---|---|")
    for name, wall, fps in rows:
        print(f"| {name} | {wall:.1f} | {fps:.2f} |")


if __name__ == "__main__":
    main()
