"""Animation acceptance: beat sync of a music-driven zoom, and colour that holds.

    python benchmarks/bench_animation.py [--frames 300] [--size 160]

1. A 10 s, 24 fps zoom driven by a generated 120 bpm click track (``--zoom "1 + 2*beat"``):
   the frames where the per-frame zoom rate peaks against the frames holding each click, and
   the first click's time in the finished file's soundtrack.
2. A ``--frames`` long zoom (preset ``zoom``) from a photo and from noise, with and without
   ``dream.color_match: first``: Hasler-Suesstrunk colourfulness of the last 24 frames against
   the first 24 (1.00 = held).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import machine, table

from dreamvideo.engine import pick_device
from dreamvideo.media import click_track, load_envelopes, read_audio, read_frames, write_wav
from dreamvideo.motion import SAMPLE_RATE
from dreamvideo.presets import load_preset, set_values
from dreamvideo.render import plan_zoom, render_zoom

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "coffee.jpg"
FPS = 24


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk (2003): sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mu_rg^2 + mu_yb^2)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def beat_sync(tmp: Path, size: int) -> list[list[str]]:
    song = tmp / "clicks.wav"
    clicks = np.arange(0.25, 10.0, 0.5)
    write_wav(song, click_track(10.0, 120))
    cfg = set_values(
        load_preset("zoom"),
        {
            "zoom.audio": str(song),
            "zoom.seconds": None,
            "zoom.zoom": "1 + 2*beat",
            "zoom.width": size,
            "zoom.height": size,
            "zoom.fps": FPS,
        },
    )
    a = cfg.audio
    plan = plan_zoom(cfg, load_envelopes(song, FPS, a.attack, a.release, a.beat_decay))
    rate = np.array([plan.motion_at(t).zoom for t in range(plan.frames)])
    peaks = np.array(
        [k for k in range(1, plan.frames - 1) if rate[k] > rate[k - 1] and rate[k] >= rate[k + 1]]
    )
    want = np.floor(clicks * FPS).astype(int)
    out = tmp / "music.mp4"
    render_zoom(cfg, None, out)
    sound = read_audio(out, SAMPLE_RATE)
    first = np.flatnonzero(np.abs(sound) > 0.4)[0] / SAMPLE_RATE
    off = np.abs(peaks[:, None] - want[None, :]).min(axis=0) if len(peaks) else want * 0 + 99
    return [
        [
            "zoom rate peaks vs clicks (10 s, 120 bpm, 24 fps)",
            f"{len(peaks)} peaks for {len(want)} clicks; farthest {off.max()} frame(s) away",
        ],
        ["first click in the file's sound", f"{first:.3f} s (in the song: 0.250 s)"],
    ]


def colour_hold(tmp: Path, frames: int, size: int) -> list[list[str]]:
    rows = []
    for start, image in (("samples/coffee.jpg", SAMPLE), ("noise", None)):
        cells = []
        for match in ("none", "first"):
            cfg = set_values(
                load_preset("zoom"),
                {
                    "zoom.seconds": frames / FPS,
                    "zoom.fps": FPS,
                    "zoom.width": size,
                    "zoom.height": size,
                    "dream.color_match": match,
                },
            )
            out = tmp / f"colour-{match}.mp4"
            render_zoom(cfg, image, out, overwrite=True)
            c = [colourfulness(f) for _, f in read_frames(out)]
            first, last = np.mean(c[:FPS]), np.mean(c[-FPS:])
            cells.append(f"{first:.1f} -> {last:.1f} ({last / first:.2f})")
        rows.append([f"{frames} frames from {start}, {size}x{size}", *cells])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=160)
    args = ap.parse_args()
    print(f"machine: {machine(pick_device('auto'))}\n")
    with tempfile.TemporaryDirectory() as tmp:
        print(table(["beat sync", "measured"], beat_sync(Path(tmp), args.size)))
        print()
        print(
            table(
                [
                    "zoom (preset `zoom`)",
                    "colourfulness first 24 -> last 24 frames, color_match none",
                    "color_match first",
                ],
                colour_hold(Path(tmp), args.frames, args.size),
            )
        )


if __name__ == "__main__":
    main()
