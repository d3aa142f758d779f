"""Seconds per frame of the image, video and zoom presets against a plain reference, same run.

    pip install -e ".[bench]"
    python benchmarks/bench_speed.py [--frames 12] [--widths 320 640] [--device auto]
                                     [--compile] [--skip-memory]

Prints Markdown tables (copy them into benchmarks/RESULTS.md):

1. seconds per frame for `image` (`default` preset), `video` and `zoom` at each width, beside
   a plain reference written here: classic per-frame DeepDream (the whole network run to its
   logits with a hook on the layer, fp32, NCHW, BatchNorm kept, nothing carried between
   frames: every frame gets the full first-frame dream), and the speed-up;
2. temporal stability of `video` and of the reference on the same real frames;
3. what each optimization is worth on `video` (each one switched off in turn);
4. achieved FLOP/s of one ascent step against the matmul peak;
5. peak memory of one ascent step at 1080p and 4K with tiling on (and 1080p without).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import machine, matmul_peak, real_clip, step_flops, step_seconds, sync, table

from dreamvideo.config import Config
from dreamvideo.engine import (
    Build,
    EfficientNetLite0,
    bundled_weights_path,
    octave_sizes,
    pick_device,
    resize,
    to_tensor,
    to_uint8,
)
from dreamvideo.media import VideoWriter, codec_args, measure_clip, read_frames, resize_rgb
from dreamvideo.motion import Motion, cover, feedback_step
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for, render_video, render_zoom

# --------------------------------------------------------------------------- the reference


class ReferenceDream:
    """Classic DeepDream as most scripts write it, for comparison only.

    The whole EfficientNet-Lite0 runs to its logits on every step; a forward hook grabs the
    layer; fp32, NCHW, BatchNorm not folded, gradient normalized by its mean magnitude.
    """

    def __init__(self, block: int, device: torch.device) -> None:
        net = EfficientNetLite0()
        net.load_state_dict(torch.load(bundled_weights_path(), weights_only=True), strict=True)
        self.net = net.eval().requires_grad_(False).to(device)
        self.captured: list[torch.Tensor] = []
        net._blocks[block].register_forward_hook(lambda m, i, o: self.captured.append(o))

    def __call__(
        self,
        img: torch.Tensor,
        octaves: int,
        scale: float,
        iterations: int,
        step: float,
        jitter: int,
        seed: int,
    ) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        sizes = octave_sizes(img.shape[2], img.shape[3], octaves, scale)
        detail = torch.zeros_like(resize(img, sizes[0]))
        x = img
        for size in sizes:
            base = resize(img, size)
            x = (base + resize(detail, size)).clamp(0, 1)
            for _ in range(iterations):
                dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=gen).tolist()
                rolled = torch.roll(x, (dy, dx), (2, 3)).detach().requires_grad_(True)
                self.captured.clear()
                self.net((rolled * 255 - 127) / 128)  # the whole network, logits and all
                loss = self.captured[0].square().mean()
                (g,) = torch.autograd.grad(loss, rolled)
                g = torch.roll(g, (-dy, -dx), (2, 3))
                x = (x + step / 255 * g / (g.abs().mean() + 1e-8)).clamp(0, 1).detach()
            detail = x - base
        return x


def reference_for(cfg: Config, device: torch.device) -> tuple[ReferenceDream, dict]:
    d = cfg.dream
    block = int(d.layers.split(".")[1])  # the presets measured here dream one blocks.N layer
    return ReferenceDream(block, device), dict(
        octaves=d.octaves,
        scale=d.octave_scale,
        iterations=d.iterations,
        step=d.step,
        jitter=d.jitter,
        seed=d.seed,
    )


# --------------------------------------------------------------------------- measurements


def timed(fn, device: torch.device) -> tuple[float, object]:
    sync(device)
    t = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t, out


def image_case(width: int, device: torch.device) -> tuple[float, float]:
    import skimage.data

    cfg = load_preset("default").override("dream", device=str(device))
    rgb = resize_rgb(skimage.data.astronaut(), width)
    x = to_tensor(rgb, device)
    dreamer = dreamer_for(cfg.dream)
    ours, _ = timed(lambda: dreamer(x), device)
    ref, params = reference_for(cfg, device)
    theirs, _ = timed(lambda: ref(x, **params), device)
    return ours, theirs


def video_case(
    width: int, frames: int, device: torch.device, folder: Path, measure: bool
) -> tuple[float, float, tuple | None]:
    """Seconds per frame of the `video` preset and of the reference on real footage."""
    cfg = (
        load_preset("video")
        .override("video", width=width, max_frames=frames)
        .override("dream", device=str(device))
    )
    ours_file = folder / f"ours-{width}.mp4"
    t, r = timed(
        lambda: render_video(cfg, real_clip(), ours_file, restart=True, overwrite=True), device
    )
    ours = t / r.frames
    ref, params = reference_for(cfg, device)
    ref_file = folder / f"ref-{width}.mp4"
    size = r.size
    start = time.perf_counter()
    with VideoWriter(ref_file, size, r.fps, codec_args(*size, 18, False, "medium")) as w:
        for _, frame in read_frames(real_clip(), 0, frames, size):
            w.write(to_uint8(ref(to_tensor(frame, device), **params)))
    sync(device)
    theirs = (time.perf_counter() - start) / frames
    stability = None
    if measure:
        stability = (measure_clip(real_clip(), ours_file), measure_clip(real_clip(), ref_file))
    return ours, theirs, stability


def zoom_case(width: int, frames: int, device: torch.device, folder: Path) -> tuple[float, float]:
    import skimage.data

    fps = 24
    cfg = (
        load_preset("zoom")
        .override("zoom", width=width, height=width, seconds=frames / fps, fps=fps)
        .override("dream", device=str(device))
    )
    src = folder / "start.png"
    from PIL import Image

    Image.fromarray(skimage.data.astronaut()).save(src)
    t, r = timed(
        lambda: render_zoom(cfg, src, folder / f"zoom-{width}.mp4", restart=True, overwrite=True),
        device,
    )
    ours = t / r.frames
    ref, params = reference_for(cfg, device)
    step = Motion(zoom=float(cfg.zoom.zoom)).per_frame(fps)
    x = cover(skimage.data.astronaut(), (width, width))
    start = time.perf_counter()
    for i in range(frames):
        if i:
            x = feedback_step(x, step)
        out = ref(to_tensor(x, device), **params)
        x = out[0].permute(1, 2, 0).cpu().numpy()
    sync(device)
    return ours, (time.perf_counter() - start) / frames


# --------------------------------------------------------------------------- ablations


# each optimization switched off (or, for torch.compile, on): how the network is built, and
# whether decoding, flow and encoding overlap the ascent on threads
VARIANTS = {
    "everything on": (Build(), True),
    "BatchNorm folding": (Build(fold_batchnorm=False), True),
    "channels_last": (Build(channels_last=False), True),
    "reader/writer threads": (Build(), False),
    "torch.compile (on)": (Build(compile=True), True),
}


def ablation(
    width: int,
    frames: int,
    device: torch.device,
    folder: Path,
    variants: list[str],
    rounds: int = 3,
) -> list[list[str]]:
    """Best-of-``rounds`` seconds per frame for each variant, the variants interleaved so
    that a noisy neighbour on the machine slows them all alike."""
    cfg = (
        load_preset("video")
        .override("video", width=width, max_frames=frames)
        .override("dream", device=str(device))
    )
    best = dict.fromkeys(variants, float("inf"))
    dreamers = {what: dreamer_for(cfg.dream, build=VARIANTS[what][0]) for what in variants}
    for _ in range(rounds):
        for what in variants:
            t, r = timed(
                lambda what=what: render_video(
                    cfg,
                    real_clip(),
                    folder / "ab.mp4",
                    dreamer=dreamers[what],
                    restart=True,
                    overwrite=True,
                    overlap=VARIANTS[what][1],
                ),
                device,
            )
            best[what] = min(best[what], t / r.frames)
    base = best["everything on"]
    return [
        [
            what if what in ("everything on", "torch.compile (on)") else f"without {what}",
            f"{spf:.3f}",
            f"{spf / base:.2f}x",
        ]
        for what, spf in best.items()
    ]


def step_ablation(device: torch.device, variants: list[str], rounds: int = 5) -> list[list[str]]:
    """Seconds per ascent step (512x288, `video` preset) with each network change switched off;
    steps are short, so many interleaved rounds average the machine's noise out."""
    x = torch.rand(1, 3, 288, 512, device=device)
    cfg = load_preset("video").override("dream", device=str(device))
    dreamers = {what: dreamer_for(cfg.dream, build=VARIANTS[what][0]) for what in variants}
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for what, d in dreamers.items():
            best[what] = min(best[what], step_seconds(d, x, repeat=5))
    base = best["everything on"]
    return [
        [
            what if what == "everything on" else f"without {what}",
            f"{1000 * t:.0f} ms",
            f"{t / base:.2f}x",
        ]
        for what, t in best.items()
    ]


# --------------------------------------------------------------------------- memory

_MEMORY_PROBE = """
import json, os, sys, threading, time, torch
from dreamvideo.engine import gradient
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for
w, h, tile, device = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
d = dreamer_for(load_preset('video').override('dream', tile=tile, device=device).dream)
x = torch.rand(1, 3, h, w, device=d.device)
page = os.sysconf('SC_PAGE_SIZE')
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * page
peak, done = [rss()], []
base = peak[0]
def sample():  # resident memory every 2 ms while the step runs
    while not done:
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)
if d.device.type == 'cuda':
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
watcher = threading.Thread(target=sample)
watcher.start()
gradient(d.net, d.objective, x, tile=tile, generator=torch.Generator().manual_seed(0),
         autocast=d.autocast)
done.append(1)
watcher.join()
top = torch.cuda.max_memory_allocated() if d.device.type == 'cuda' else peak[0]
print(json.dumps({'extra': top - base}))
"""


def memory(w: int, h: int, tile: int, device: torch.device) -> str:
    r = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(w), str(h), str(tile), str(device)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        return f"failed ({r.stderr.strip().splitlines()[-1][:60]})"
    return f"{json.loads(r.stdout)['extra'] / 2**30:.2f} GiB"


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--frames",
        type=int,
        default=12,
        help="frames per clip at the first width (halved for each doubling of the width)",
    )
    ap.add_argument("--widths", type=int, nargs="+", default=[320, 640])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true", help="also try torch.compile")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    device = pick_device(args.device)
    print(f"machine: {device}: {machine(device)}\n")

    speed_rows, stability = [], None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for k, width in enumerate(args.widths):
            frames = max(2, args.frames // (width // args.widths[0]))
            ours, theirs = image_case(width, device)
            speed_rows.append(
                [
                    f"image (`default`), {width} px wide",
                    "1",
                    f"{ours:.2f}",
                    f"{theirs:.2f}",
                    f"{theirs / ours:.1f}x",
                ]
            )
            ours, theirs, st = video_case(width, frames, device, folder, measure=k == 0)
            stability = stability or st
            speed_rows.append(
                [
                    f"video (`video`, real footage), {width} px wide",
                    str(frames),
                    f"{ours:.2f}",
                    f"{theirs:.2f}",
                    f"{theirs / ours:.1f}x",
                ]
            )
            zf = max(2, frames // 2)
            ours, theirs = zoom_case(width, zf, device, folder)
            speed_rows.append(
                [
                    f"zoom (`zoom`), {width}x{width}",
                    str(zf),
                    f"{ours:.2f}",
                    f"{theirs:.2f}",
                    f"{theirs / ours:.1f}x",
                ]
            )
        print("## Seconds per frame\n")
        print(
            table(
                ["work", "frames", "dreamvideo s/frame", "reference s/frame", "speed-up"],
                speed_rows,
            )
        )
        if stability:
            ours_m, ref_m = stability
            print("\n## Temporal stability, same frames (`dreamvideo metrics`)\n")
            print(
                table(
                    ["render", "warping error ratio (out/src)", "strength", "drift"],
                    [
                        [
                            "dreamvideo `video`",
                            f"{ours_m.warp_ratio:.2f}",
                            f"{ours_m.strength:.1f}",
                            f"{ours_m.drift:.2f}",
                        ],
                        [
                            "reference per-frame dream",
                            f"{ref_m.warp_ratio:.2f}",
                            f"{ref_m.strength:.1f}",
                            f"{ref_m.drift:.2f}",
                        ],
                    ],
                )
            )
        print("\n## What each network change is worth (one ascent step, 512x288, best of 5)\n")
        print(
            table(
                ["variant", "step", "vs everything on"],
                step_ablation(device, ["everything on", "BatchNorm folding", "channels_last"]),
            )
        )
        variants = ["everything on", "reader/writer threads"] + (
            ["torch.compile (on)"] if args.compile else []
        )
        print(
            f"\n## What the pipeline threads are worth (`video`, {args.widths[0]} px, "
            f"{args.frames} frames, best of 3)\n"
        )
        print(
            table(
                ["variant", "s/frame", "vs everything on"],
                ablation(args.widths[0], args.frames, device, folder, variants),
            )
        )

    cfg = load_preset("video").override("dream", device=str(device))
    dreamer = dreamer_for(cfg.dream)
    x = torch.rand(1, 3, 288, 512, device=device)
    flops, seconds, peak = step_flops(dreamer, x), step_seconds(dreamer, x), matmul_peak(device)
    print("\n## One ascent step, 512x288, `blocks.10`\n")
    print(
        table(
            ["matmul peak", "step", "work", "achieved", "share of peak"],
            [
                [
                    f"{peak / 1e9:.0f} GFLOP/s",
                    f"{seconds * 1000:.0f} ms",
                    f"{flops / 1e9:.2f} GFLOP",
                    f"{flops / seconds / 1e9:.1f} GFLOP/s",
                    f"{100 * flops / seconds / peak:.0f}%",
                ]
            ],
        )
    )
    if not args.skip_memory:
        print("\n## Peak memory of one ascent step (`blocks.10`), beyond the loaded model\n")
        rows = [
            ["1920x1080", "1024", memory(1920, 1080, 1024, device)],
            ["1920x1080", "off", memory(1920, 1080, 0, device)],
            ["3840x2160", "1024", memory(3840, 2160, 1024, device)],
        ]
        print(table(["frame", "tile", "peak extra memory"], rows))


if __name__ == "__main__":
    main()
