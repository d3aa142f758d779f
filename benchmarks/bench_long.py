"""Long clips stay flat: memory and temporary disk of renders of a long 1080p clip.

    python benchmarks/bench_long.py [--minutes 10] [--dreamed-minutes 2] [--height 1080]

A long clip is made with ffmpeg from the bundled samples/astronaut-pan.mp4 (looped, scaled
to 1920x1080 at 25 fps). Two renders of it run as the command line runs them, each in a
process of its own, sampled every second: the pipeline alone over the whole clip (``video
--iterations 0 --set video.next_iterations=0``: decoding, optical flow, the clip stepper,
encoding, checkpoints and the join; nothing dreamed), and the first ``--dreamed-minutes``
dreamed with ``--preset video-hd``. For each: the peak resident memory of dreamvideo and its
ffmpeg children, its slope against the frames done (least squares after the first tenth:
what each further 1000 frames add), and the peak of the temporary files on disk (the
``OUTPUT.parts`` folder and the join's file) against the finished file's size.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import table

from dreamvideo.media import ffmpeg_exe

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
FRAME = re.compile(r"frame (\d+) of")


def make_clip(path: Path, minutes: float, height: int) -> None:
    width = height * 16 // 9
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i",
         str(SAMPLES / "astronaut-pan.mp4"), "-t", str(minutes * 60),
         "-vf", f"scale={width}:{height},fps=25", "-c:v", "libx264", "-preset", "ultrafast",
         "-crf", "23", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every process under it."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) * 1024  # type: ignore[union-attr]
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except (OSError, AttributeError):
            continue
        todo += [int(c) for c in children]
    return total


def temp_bytes(output: Path) -> int:
    """Bytes of the render's temporary files: its parts folder and hidden files beside."""
    total = 0
    for f in output.parent.iterdir():
        if f.name.startswith(".") and f.is_file():
            total += f.stat().st_size
    parts = output.with_name(output.name + ".parts")
    if parts.is_dir():
        total += sum(f.stat().st_size for f in parts.iterdir() if f.is_file())
    return total


def slope(points: list[tuple[int, int]]) -> float:
    """Least-squares bytes per frame of ``(frames, bytes)`` points."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(f for f, _ in points) / n
    my = sum(b for _, b in points) / n
    var = sum((f - mx) ** 2 for f, _ in points)
    return sum((f - mx) * (b - my) for f, b in points) / var if var else 0.0


def run(args: list[str], output: Path, frames: int) -> dict[str, float]:
    """Render with the command line, sampling memory and disk every second."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dreamvideo", *args], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    done = [0]

    def follow() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if m := FRAME.search(line):
                done[0] = int(m.group(1))

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    samples: list[tuple[int, int]] = []
    peak_rss = peak_disk = 0
    t0 = time.monotonic()
    while proc.poll() is None:
        rss, disk = tree_rss(proc.pid), temp_bytes(output)
        peak_rss, peak_disk = max(peak_rss, rss), max(peak_disk, disk)
        samples.append((done[0], rss))
        time.sleep(1.0)
    reader.join(timeout=10)
    if proc.returncode != 0:
        sys.exit(f"render failed ({proc.returncode}): dreamvideo {' '.join(args)}")
    settled = [(f, b) for f, b in samples if f > frames / 10]
    size = output.stat().st_size
    return {
        "seconds": time.monotonic() - t0,
        "peak_rss": peak_rss / 2**20,
        "slope": slope(settled) * 1000 / 2**20,  # MiB per 1000 frames
        "peak_disk": peak_disk / 2**20,
        "output": size / 2**20,
        "samples": len(samples),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--dreamed-minutes", type=float, default=2.0)
    ap.add_argument("--height", type=int, default=1080)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        clip = Path(tmp) / "long.mp4"
        make_clip(clip, args.minutes, args.height)
        runs = [
            ("pipeline (nothing dreamed)", args.minutes,
             ["--iterations", "0", "--set", "video.next_iterations=0"]),
            ("video-hd, dreamed", args.dreamed_minutes,
             ["--preset", "video-hd", "--end", str(args.dreamed_minutes * 60)]),
        ]  # fmt: skip
        for name, minutes, extra in runs:
            out = Path(tmp) / f"out-{len(rows)}.mp4"
            frames = round(minutes * 60 * 25)
            got = run(["video", str(clip), "-o", str(out), *extra], out, frames)
            rows.append([
                name, f"{minutes:g} min, {frames} frames", f"{got['seconds'] / frames:.3f}",
                f"{got['peak_rss']:.0f}", f"{got['slope']:+.1f}", f"{got['peak_disk']:.0f}",
                f"{got['output']:.0f}", f"{got['peak_disk'] / got['output']:.2f}x",
            ])  # fmt: skip
            print(" | ".join(rows[-1]), flush=True)
            out.unlink()
    print()
    print(table(["render", "length", "s per frame", "peak RSS MiB",
                 "RSS slope MiB per 1000 frames", "peak temporary disk MiB", "output MiB",
                 "temporary / output"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
