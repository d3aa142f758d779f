"""Where the time of one 1280x720 frame goes on this machine, stage by stage (same run).

    python benchmarks/profile_hd.py [--repeat 5]

On bigbuckbunny.mp4 (native 720p): decoding a frame, DIS flow with the occlusion check
(medium and fast), carrying the residual along it, one ascent step at full size and at half
size (`video.dream_scale` 0.5) with the achieved FLOP/s against the matmul peak, and encoding
a frame (x264 medium). Then what a `video-hd` frame and a full-size `video` touch-up frame
add up to. Medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from common import machine, matmul_peak, real_clip, step_flops, step_seconds, table

from dreamvideo.device import pick_device, to_tensor
from dreamvideo.dreamer import Dreamer
from dreamvideo.ffmpeg import VideoWriter, codec_args
from dreamvideo.flow import carry_residual, make_flow, track
from dreamvideo.frames import probe_video, read_frames
from dreamvideo.presets import load_preset


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    device = pick_device("auto")
    clip = real_clip("bigbuckbunny.mp4")
    info = probe_video(clip)
    size = (info.width, info.height)
    frames = [f for _, f in read_frames(clip, 0, 12)]
    rows, cost = [], {}

    def add(stage: str, seconds: float, note: str = "") -> None:
        cost[stage] = seconds
        rows.append([stage, f"{seconds * 1000:.0f} ms", note])

    decode = median_seconds(lambda: list(read_frames(clip, 0, 2)), args.repeat) / 2
    add("decode one frame", decode, "ffmpeg pipe, first 2 frames (start-up included)")
    for preset in ("medium", "fast"):
        flow = make_flow("dis", preset)

        def follow(flow=flow) -> None:
            track(frames[4], frames[5], flow, True)

        add(f"flow + occlusion check, DIS {preset}", median_seconds(follow, args.repeat))
    tr = track(frames[4], frames[5], make_flow("dis", "medium"), True)
    cur, prev = to_tensor(frames[5], device), to_tensor(frames[4], device)
    flow_t, mask_t = torch.from_numpy(tr.flow), torch.from_numpy(tr.mask)

    def carry() -> None:
        carry_residual(cur, prev, prev, flow_t, mask_t, 0.98)

    add("carry the residual along the flow", median_seconds(carry, args.repeat))

    cfg = load_preset("video-hd")
    dreamer = Dreamer.from_config(cfg.dream)
    peak = matmul_peak(device)
    half = F.interpolate(cur, scale_factor=0.5, mode="area")
    for name, x in (("full size 1280x720", cur), ("half size 640x360", half)):
        seconds = step_seconds(dreamer, x, args.repeat)
        achieved = step_flops(dreamer, x) / seconds
        share = f"{achieved / 1e9:.1f} GFLOP/s = {100 * achieved / peak:.0f} % of the matmul peak"
        add(f"one ascent step, {name}", seconds, share)

    with tempfile.TemporaryDirectory() as tmp:
        codec = codec_args(*size, 18, False, "medium")

        def encode() -> None:
            with VideoWriter(Path(tmp) / "e.mp4", size, info.fps, codec) as w:
                for f in frames:
                    w.write(f)

        per_frame = median_seconds(encode, 3) / len(frames)
        add("encode one frame (x264 medium)", per_frame, "12 frames through one encoder")

    v = cfg.video
    later = replace(dreamer.params, octaves=v.next_octaves, iterations=v.next_iterations)
    steps = dreamer.steps(360, 640, later)
    other = sum(
        cost[k]
        for k in (
            "decode one frame",
            "flow + occlusion check, DIS medium",
            "carry the residual along the flow",
            "encode one frame (x264 medium)",
        )
    )
    touch = steps * cost["one ascent step, half size 640x360"]
    full_steps = dreamer.steps(720, 1280, later)
    full_touch = full_steps * cost["one ascent step, full size 1280x720"]
    print(f"machine: {machine(device)}; matmul peak {peak / 1e9:.0f} GFLOP/s\n")
    print(table(["stage (1280x720)", "time", "note"], rows))
    print(
        f"\n`video-hd` frame: {steps} half-size ascent steps ({touch:.2f} s) on every other frame "
        f"+ decode, flow, carry, encode ({other:.2f} s) = {touch / 2 + other:.2f} s/frame on "
        f"average; the ascent's share {touch / 2 / (touch / 2 + other):.0%}.\n"
        f"Full-size `video` touch-up frame: {full_steps} steps ({full_touch:.2f} s) + "
        f"{other:.2f} s = {full_touch + other:.2f} s/frame."
    )


if __name__ == "__main__":
    main()
