"""Zoom acceptance: a looped 10 s, 24 fps, 512x512 zoom from a photo; speed and loop seam.

    python benchmarks/bench_zoom.py [--preset zoom] [--seconds 10] [--size 512] [--image PNG]

Prints seconds per frame, the mean |difference| (0..255) between the last and the first
frame beside the range of differences between neighbouring frames, and how sharp (variance
of the Laplacian) the blurriest frame of the last second is against the median frame: a
cross-fade's double exposure shows there.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
from common import machine, table

from dreamvideo.engine import pick_device
from dreamvideo.media import read_frames
from dreamvideo.presets import load_preset
from dreamvideo.render import render_zoom

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "coffee.jpg"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="zoom")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--image", type=Path, default=SAMPLE, help="start picture")
    args = ap.parse_args()
    cfg = load_preset(args.preset).override(
        "zoom", seconds=args.seconds, fps=24.0, width=args.size, height=args.size, loop=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "zoom.mp4"
        r = render_zoom(cfg, args.image, out, overwrite=True)
        frames = [f.astype(np.float32) for _, f in read_frames(out)]
    steps = [float(np.abs(b - a).mean()) for a, b in zip(frames, frames[1:], strict=False)]
    seam = float(np.abs(frames[0] - frames[-1]).mean())
    sharp = [cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var() for f in frames]
    last_second = min(sharp[-24:]) / float(np.median(sharp))
    print(f"machine: {machine(pick_device(cfg.dream.device))}\n")
    print(
        table(
            [
                "render",
                "frames",
                "s/frame",
                "neighbour differences min / median / max",
                "last -> first",
                "sharpness, last second (min) / median frame",
            ],
            [
                [
                    f"`{args.preset}` from {args.image.name}, {args.size}x{args.size}, 24 fps, "
                    "--loop",
                    str(r.frames),
                    f"{r.seconds_per_frame:.2f}",
                    f"{min(steps):.1f} / {np.median(steps):.1f} / {max(steps):.1f}",
                    f"{seam:.1f}",
                    f"{last_second:.2f}",
                ]
            ],
        )
    )


if __name__ == "__main__":
    main()
