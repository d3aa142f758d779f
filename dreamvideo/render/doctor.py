"""What this machine will do with dreamvideo (``dreamvideo doctor``): the versions, the device
a render would use and why, the GPU, ffmpeg and its encoders, the optional extras and the
model weights that are found, and one ascent step of the ``video`` preset timed on that
device, with the seconds per 720p frame it suggests for ``video`` and ``video-hd``.

Everything is read, nothing is installed or downloaded. The estimates are estimates: the
touch-ups' ascent steps at the measured speed, without the optical flow, the encoding and the
first frame's full dream of each shot.
"""

from __future__ import annotations

import importlib.util
import platform
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from dreamvideo import __version__, names
from dreamvideo.engine.ascent import gradient, octave_sizes
from dreamvideo.engine.device import pick_device
from dreamvideo.media.ffmpeg import encoders, ffmpeg_exe
from dreamvideo.presets import load_preset

# encoders that matter to dreamvideo's outputs: (ffmpeg's name, what it gives)
ENCODERS = {
    "libx264": "H.264",
    "libx265": "H.265",
    "prores_ks": "ProRes",
    "libvpx-vp9": "VP9",
    "libsvtav1": "AV1",
    "gif": "GIF",
    "libwebp_anim": "WebP",
    "ffv1": "FFV1",
}
# optional extras: (extra, the module it brings, what it is for)
EXTRAS = (
    ("audio", "librosa", "music-driven zooms"),
    ("ray", "ray", "--workers, batch on a cluster"),
    ("ui", "gradio", "dreamvideo ui"),
    ("exr", "OpenEXR", "EXR frames"),
    ("docs", "mkdocs", "the documentation site"),
)
TIMED = ((360, 640), (720, 1280))  # the step is timed at these (height, width)
CUDA_WHEELS = "https://download.pytorch.org/whl/cu128"


@dataclass
class Report:
    """What ``dreamvideo doctor`` found: rows (name, value) and the figures, for JSON."""

    rows: list[tuple[str, str]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: str, key: str | None = None, figure: Any = None) -> None:
        self.rows.append((name, value))
        if key is not None:
            self.figures[key] = value if figure is None else figure


def _nvidia_gpu() -> str | None:
    """The name of an NVIDIA GPU the driver sees, whatever torch is built for."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        r = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else None


def device_and_why() -> tuple[torch.device, str]:
    """The device a render picks (``--device auto``) and why, with what to do where a GPU is
    there but unused."""
    device = pick_device("auto")
    if device.type == "cuda":
        return device, "CUDA is available"
    mps = getattr(torch.backends, "mps", None)
    apple = " (an Apple GPU is there: --device mps uses it, not measured)"
    apple = apple if mps and mps.is_available() else ""
    gpu = _nvidia_gpu()
    if gpu and torch.version.cuda is None:
        return device, (
            f"{gpu} is there but this torch is a CPU build; install the CUDA build: pip "
            f"install torch torchvision --index-url {CUDA_WHEELS}"
        )
    if gpu:
        return device, (
            f"{gpu} is there, but torch {torch.__version__} (CUDA {torch.version.cuda}) cannot "
            "use it: check the driver (nvidia-smi) and CUDA_VISIBLE_DEVICES"
        )
    if torch.version.cuda is None and torch.version.hip is None:
        return device, f"no GPU found; torch is a CPU build{apple}"
    return device, f"no GPU found{apple}"


def _torch_build() -> str:
    parts = [f"torch {torch.__version__}"]
    if torch.version.cuda:
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        parts.append(f"CUDA {torch.version.cuda}" + (f", cuDNN {cudnn}" if cudnn else ""))
    if torch.version.hip:
        parts.append(f"ROCm {torch.version.hip}")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_built():
        parts.append("MPS" + (" available" if mps.is_available() else " built"))
    if len(parts) == 1:
        parts.append("CPU only")
    return ", ".join(parts)


def _ffmpeg() -> tuple[str, list[str]]:
    """ffmpeg's version and which of :data:`ENCODERS` it has."""
    exe = ffmpeg_exe()
    try:
        version = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not runnable", []
    first = version.stdout.splitlines()[0] if version.stdout else "?"
    m = re.match(r"ffmpeg version (\S+)", first)
    listed = encoders(exe) or frozenset()
    return (m.group(1) if m else first), [k for k in ENCODERS if k in listed]


def _weights() -> list[tuple[str, str]]:
    """Each model and where its weights are found (or that they are not)."""
    from dreamvideo.engine.efficientnet import bundled_weights_path
    from dreamvideo.engine.weights import hub_weights_file

    found = []
    try:
        found.append((names.DEFAULT_MODEL, f"bundled: {bundled_weights_path()}"))
    except Exception as e:  # noqa: BLE001 - a report names what is wrong, it does not stop
        found.append((names.DEFAULT_MODEL, f"missing ({type(e).__name__})"))
    for model in (*names.TORCHVISION_MODELS, "raft_small"):
        try:
            path = hub_weights_file(model)
        except Exception:  # noqa: BLE001 - torchvision without that model
            found.append((model, "unknown to this torchvision"))
            continue
        found.append((model, str(path) if path.is_file() else f"not found (would be {path})"))
    return found


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(device: torch.device, repeats: int = 3) -> dict[tuple[int, int], float]:
    """Seconds of one ascent step (the ``video`` preset's objective) at each size of
    :data:`TIMED`, on ``device``: the best of ``repeats`` after one warm-up."""
    from dreamvideo.render.network import dreamer_for

    dream = load_preset("video").dream
    dreamer = dreamer_for(replace(dream, device=str(device)))
    times = {}
    for h, w in TIMED:
        x = torch.rand(1, 3, h, w, device=dreamer.device)
        gradient(dreamer.net, dreamer.objective, x, autocast=dreamer.autocast)
        _sync(dreamer.device)
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            gradient(dreamer.net, dreamer.objective, x, autocast=dreamer.autocast)
            _sync(dreamer.device)
            best = min(best, time.perf_counter() - t)
        times[(h, w)] = best
    return times


def per_frame(preset: str, times: dict[tuple[int, int], float], size=(720, 1280)) -> float:
    """Seconds of ascent per frame of ``size`` = (h, w) for ``preset``'s touch-ups, from the
    measured step ``times`` (scaled by pixels between and beyond them)."""
    cfg = load_preset(preset)
    v = cfg.video
    (h0, w0), (h1, w1) = TIMED
    t0, t1 = times[TIMED[0]], times[TIMED[1]]
    slope = (t1 - t0) / (h1 * w1 - h0 * w0)

    def step(h: int, w: int) -> float:
        return max(t0 + slope * (h * w - h0 * w0), 0.0)

    h, w = round(size[0] * v.dream_scale), round(size[1] * v.dream_scale)
    octaves = octave_sizes(h, w, v.next_octaves, cfg.dream.octave_scale)
    return sum(v.next_iterations * step(oh, ow) for oh, ow in octaves) / v.stride


def examine(timing: bool = True) -> Report:
    """The report (see the module doc); ``timing``: time the ascent step too."""
    import sys

    r = Report()
    r.add("dreamvideo", __version__, "dreamvideo")
    r.add("Python", f"{platform.python_version()} ({sys.executable})", "python",
          platform.python_version())  # fmt: skip
    r.add("torch", _torch_build(), "torch", torch.__version__)
    r.figures.update(cuda=torch.version.cuda, hip=torch.version.hip)
    device, why = device_and_why()
    r.add("device", f"{device} ({why})", "device", str(device))
    r.figures["device_why"] = why
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        bf16 = torch.cuda.is_bf16_supported()
        r.add("GPU", f"{props.name}, {props.total_memory / 2**30:.1f} GiB, bf16 "
              f"{'yes' if bf16 else 'no (fp16 is used)'}", "gpu", props.name)  # fmt: skip
        r.figures.update(gpu_memory_gib=props.total_memory / 2**30, bf16=bf16)
    version, found = _ffmpeg()
    missing = [ENCODERS[k] for k in ENCODERS if k not in found]
    r.add("ffmpeg", f"{version}; encoders: {', '.join(ENCODERS[k] for k in found)}"
          + (f"; missing: {', '.join(missing)}" if missing else ""), "ffmpeg", version)  # fmt: skip
    r.figures["encoders"] = found
    extras = {name: importlib.util.find_spec(module) is not None for name, module, _ in EXTRAS}
    r.add("extras", ", ".join(f"{name} ({what}): {'yes' if extras[name] else 'no'}"
                              for name, _, what in EXTRAS), "extras", extras)  # fmt: skip
    weights = _weights()
    for model, where in weights:
        r.rows.append((f"weights {model}", where))
    r.figures["weights"] = dict(weights)
    if timing:
        times = time_steps(device)
        for (h, w), t in times.items():
            r.add(f"ascent step {w}x{h}", f"{t * 1000:.1f} ms (video preset, {device})")
        r.figures["step_ms"] = {f"{w}x{h}": t * 1000 for (h, w), t in times.items()}
        for preset in ("video", "video-hd"):
            s = per_frame(preset, times)
            r.add(f"{preset} at 720p", f"about {s:.2f} s per frame (an estimate: touch-ups "
                  "only, without flow, encoding and each shot's first full dream)",
                  f"{preset}_720p_seconds", s)  # fmt: skip
    return r


def bundled_model_file() -> Path | None:
    """The bundled network's weights file, where it is installed."""
    from dreamvideo.engine.efficientnet import bundled_weights_path

    try:
        return Path(bundled_weights_path())
    except Exception:  # noqa: BLE001 - a report, not a render
        return None
