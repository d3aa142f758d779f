"""The device: which one, the forward's precision, and frames moved to and from it (copies
that overlap the ascent on CUDA, plain views on the CPU)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from dreamvideo.errors import UserError


def pick_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU (an Apple GPU only when asked for, ``mps``: it is
    not measured); an unusable device is a :class:`UserError`."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "mps" and not (torch.backends.mps.is_available()):
        raise UserError(
            "device 'mps': no Apple GPU (Metal) that this torch can use on this machine; "
            "use --device cpu or --device auto"
        )
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(
                f"device {spec!r}: CUDA is not available on this machine; "
                "use --device cpu or --device auto"
            )
        index = int(spec.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise UserError(
                f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s); "
                f"use cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
    return torch.device(spec)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The forward's autocast dtype: bf16 on CUDA by default (fp16 where bf16 is missing)."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


@functools.lru_cache(maxsize=64)
def constant(
    values: tuple, device: torch.device, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``values`` (a tuple, nested for more dimensions) as a tensor on ``device``, made once:
    building it there at every call would copy it from the host, which on a GPU waits for the
    queued work (the step loop must not wait). Treat it as read-only."""
    return torch.tensor(values, dtype=dtype, device=device)


@functools.lru_cache(maxsize=64)
def _blur_weight(
    taps: tuple[float, ...], channels: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    k = constant(taps, device, dtype)
    return torch.eye(channels, dtype=dtype, device=device)[:, :, None, None] * (k[:, None] * k)


def blur(x: torch.Tensor, taps: tuple[float, ...], stride: int = 1) -> torch.Tensor:
    """``(B,C,H,W)`` blurred by the separable kernel ``taps`` (odd length, summing to 1),
    edges replicated; ``stride`` 2 also halves the size, computing only the kept pixels.

    A dense CxC convolution with the kernel on its diagonal: for 3 channels it runs about
    twice as fast on CPUs as the equivalent depthwise (grouped) convolution, and for 3x3
    kernels seven times as fast.
    """
    r = len(taps) // 2
    weight = _blur_weight(taps, x.shape[1], x.device, x.dtype)
    return torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (r, r, r, r), mode="replicate"), weight, stride=stride
    )


def to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(H,W,3)`` uint8 (0..255), uint16 (0..65535) or float32 (0..1) RGB -> ``(1,3,H,W)``
    float32 in ``[0,1]``."""
    if rgb.dtype == np.uint16:  # torch has no uint16 arithmetic on every device
        rgb = rgb.astype(np.int32)
        top = 65535.0
    else:
        top = 255.0 if rgb.dtype == np.uint8 else 1.0
    t = torch.from_numpy(np.ascontiguousarray(rgb)).to(device, non_blocking=True)
    t = t.permute(2, 0, 1)[None].float()
    return t.div_(top) if top != 1.0 else t


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """``(1,3,H,W)`` float in ``[0,1]`` -> ``(H,W,3)`` uint8 RGB on the host."""
    return img[0].mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def to_uint16(img: torch.Tensor) -> np.ndarray:
    """``(1,3,H,W)`` float in ``[0,1]`` -> ``(H,W,3)`` uint16 (0..65535) on the host."""
    x = img[0].float().mul(65535.0).round_().clamp_(0, 65535).to(torch.int32)
    return x.permute(1, 2, 0).cpu().numpy().astype(np.uint16)


def to_float(img: torch.Tensor) -> np.ndarray:
    """``(1,3,H,W)`` float in ``[0,1]`` -> ``(H,W,3)`` float32 on the host, contiguous (OpenCV
    copies a strided array before it works on it: warps take half again as long)."""
    return img[0].permute(1, 2, 0).float().contiguous().cpu().numpy()


def to_uint8_device(img: torch.Tensor) -> torch.Tensor:
    """``(1,3,H,W)`` float in ``[0,1]`` -> ``(H,W,3)`` uint8, still on its device."""
    return img[0].mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()


def to_frame_device(img: torch.Tensor, dtype: str = "uint8") -> torch.Tensor:
    """``(1,3,H,W)`` float in ``[0,1]`` -> ``(H,W,3)`` on its device, to be copied to the host:
    uint8, or float32 (clamped) for frames of more than 8 bits (see :class:`HostFrame`)."""
    if dtype == "uint8":
        return to_uint8_device(img)
    return img[0].float().clamp(0, 1).permute(1, 2, 0).contiguous()


# the largest value of each integer frame type: what 1.0 of float pixels becomes
TOP = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def convert(a: np.ndarray, dtype: str) -> np.ndarray:
    """An ``(H,W[,C])`` frame or alpha of uint8, uint16 or float (0..1) as ``dtype``."""
    if a.dtype == np.dtype(dtype):
        return a
    x = a.astype(np.float32) / TOP[a.dtype] if a.dtype in TOP else a.astype(np.float32)
    if dtype == "float32":
        return x
    top = TOP[np.dtype(dtype)]
    return np.round(np.clip(x, 0.0, 1.0) * top).astype(dtype)


@dataclass
class HostFrame:
    """A frame on its way to the host; :meth:`numpy` waits for the copy (CUDA) if needed,
    converts it to ``dtype`` ("uint8", "uint16" or "float32" in 0..1) and adds ``alpha``
    (``(H,W)`` of any of those) as a fourth channel."""

    data: torch.Tensor | np.ndarray
    event: torch.cuda.Event | None = None
    alpha: np.ndarray | None = None
    dtype: str = "uint8"

    def numpy(self) -> np.ndarray:
        if self.event is not None:
            self.event.synchronize()
        a = self.data.numpy() if isinstance(self.data, torch.Tensor) else self.data
        a = convert(a, self.dtype)
        if self.alpha is None:
            return a
        return np.dstack([a, convert(self.alpha, self.dtype)])


@dataclass
class Uploaded:
    """Arrays copied to the device on a side stream; :meth:`DeviceIO.ready` waits for them."""

    tensors: dict[str, torch.Tensor]
    event: torch.cuda.Event | None = None


class DeviceIO:
    """Host <-> device copies that overlap with the ascent on CUDA, plain views on the CPU.

    Uploads run on a side stream from pinned memory (the reader thread calls :meth:`upload`
    for frame t+1 while frame t is dreamed); downloads go to pinned memory without blocking
    and the writer thread waits for them. On the CPU every call is a no-op wrapper.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def upload(self, arrays: dict[str, np.ndarray]) -> Uploaded:
        if self.stream is None:
            return Uploaded(
                {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
            )
        with torch.cuda.stream(self.stream):
            tensors = {
                k: torch.from_numpy(np.ascontiguousarray(v))
                .pin_memory()
                .to(self.device, non_blocking=True)
                for k, v in arrays.items()
            }
            event = torch.cuda.Event()
            event.record(self.stream)
        return Uploaded(tensors, event)

    def ready(self, up: Uploaded) -> dict[str, torch.Tensor]:
        if up.event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(up.event)
            for t in up.tensors.values():
                t.record_stream(current)  # freed only after the ascent has used it
        return up.tensors

    def download(
        self, t: torch.Tensor, alpha: np.ndarray | None = None, dtype: str = "uint8"
    ) -> HostFrame:
        """``t`` copied to the host (see :class:`HostFrame` for ``alpha`` and ``dtype``)."""
        if self.stream is None:
            return HostFrame(t.numpy(), None, alpha, dtype)
        host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        host.copy_(t, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return HostFrame(host, event, alpha, dtype)
