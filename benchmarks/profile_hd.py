"""Where the time of one 1280x720 frame goes on this machine, stage by stage (same run).

    python benchmarks/profile_hd.py [--repeat 5]

On bigbuckbunny.mp4 (native 720p): decoding a frame, DIS flow with the occlusion check
(medium and fast), carrying the residual along it, one ascent step at full size and at half
size (`video.dream_scale` 0.5) with the achieved FLOP/s against the matmul peak, and encoding
a frame (x264 medium). Then what a `video-hd` frame and a full-size `video` touch-up frame
add up to, and trials on the half-size step: one thread instead of all, the network in the
default memory format instead of channels-last, and bf16 autocast (oneDNN's bf16 kernels on
CPUs with AVX512-BF16 or AMX). Medians of ``--repeat`` runs.
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

from dreamvideo.config import Config
from dreamvideo.engine import Build, Dreamer, pick_device, to_tensor
from dreamvideo.media import VideoWriter, codec_args, probe_video, read_frames
from dreamvideo.motion import carry_residual, make_flow, track
from dreamvideo.presets import load_preset
from dreamvideo.render import clip_steps, dreamer_for


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
    for preset, scale in (("medium", 1.0), ("fast", 1.0), ("medium", 0.5)):
        flow = make_flow("dis", preset)

        def follow(flow=flow, scale=scale) -> None:
            track(frames[4], frames[5], flow, True, scale)

        at = "" if scale == 1.0 else f" at {scale:g} size (video.flow_scale)"
        add(f"flow + occlusion check, DIS {preset}{at}", median_seconds(follow, args.repeat))
    tr = track(frames[4], frames[5], make_flow("dis", "medium"), True)
    cur, prev = to_tensor(frames[5], device), to_tensor(frames[4], device)
    flow_t, mask_t = torch.from_numpy(tr.flow), torch.from_numpy(tr.mask)

    def carry() -> None:
        carry_residual(cur, prev, prev, flow_t, mask_t, 0.98)

    add("carry the residual along the flow", median_seconds(carry, args.repeat))

    cfg = load_preset("video-hd")
    dreamer = dreamer_for(cfg.dream)
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

    trials = step_trials(dreamer, cfg, half, args.repeat)

    print(f"machine: {machine(device)}; matmul peak {peak / 1e9:.0f} GFLOP/s\n")
    print(table(["stage (1280x720)", "time", "note"], rows))
    print()
    for preset, step_cost, flow_stage in (
        ("video-hd", "one ascent step, half size 640x360",
         "flow + occlusion check, DIS medium at 0.5 size (video.flow_scale)"),
        ("video", "one ascent step, full size 1280x720", "flow + occlusion check, DIS medium"),
    ):  # fmt: skip
        v = load_preset(preset).video
        later = clip_steps(v, dreamer.params).later
        h, w = round(720 * v.dream_scale), round(1280 * v.dream_scale)
        touch = dreamer.steps(h, w, later) * cost[step_cost]
        other = cost[flow_stage] + sum(
            cost[k]
            for k in (
                "decode one frame",
                "carry the residual along the flow",
                "encode one frame (x264 medium)",
            )
        )
        frame = touch / v.stride + other
        print(
            f"`{preset}` frame: {dreamer.steps(h, w, later)} ascent steps at {w}x{h} "
            f"({touch:.2f} s) on one frame in {v.stride} + decode, flow, carry, encode "
            f"({other:.2f} s) = {frame:.2f} s/frame on average; the ascent's share "
            f"{touch / v.stride / frame:.0%}."
        )
    print()
    print(table(["one half-size step (640x360)", "time", "speed"], trials))


def step_trials(dreamer: Dreamer, cfg: Config, x: torch.Tensor, repeat: int) -> list[list[str]]:
    """One ascent step on ``x`` as it runs, then with one change at a time."""
    base = step_seconds(dreamer, x, repeat)
    rows = [["as it runs (all threads, channels-last, fp32)", f"{base * 1000:.0f} ms", "1.00x"]]

    def add(name: str, seconds: float) -> None:
        rows.append([name, f"{seconds * 1000:.0f} ms", f"{base / seconds:.2f}x"])

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    add("one thread", step_seconds(dreamer, x, repeat))
    torch.set_num_threads(threads)
    plain = dreamer_for(cfg.dream, build=Build(channels_last=False))
    add("network not channels-last", step_seconds(plain, x, repeat))
    add("bf16 autocast", step_seconds(replace(dreamer, autocast=torch.bfloat16), x, repeat))
    return rows


if __name__ == "__main__":
    main()
