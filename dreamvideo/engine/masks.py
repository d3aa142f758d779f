"""Mattes as arrays: keys computed from a frame, soft edges, and the composite through them.

A matte is ``(H,W)`` float32 in ``[0,1]``: 1 dreams, 0 keeps the source. Keys and feathering
run on the host (numpy, OpenCV), on the reader thread beside the decode; the composite runs on
the device with the dream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

# a luma key's edge: the matte falls from 1 to 0 over this much luma outside its bounds, so a
# gradient sky does not get a stair-stepped border
LUMA_SOFTNESS = 1.0 / 64.0
# a colour key dreams fully within its tolerance and fades out over half as much again
KEY_FADE = 0.5
_LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], np.float32)  # BT.709, what renders are in
MASK = "mask"  # the key of the mask among a frame's mattes; regions are "region:NAME"
_REGION = "region:"


def region_key(name: str) -> str:
    """The key of region ``name`` among a frame's mattes."""
    return f"{_REGION}{name}"


@dataclass(frozen=True)
class FrameMasks:
    """One frame's mattes on the device, each ``(1,1,H,W)`` float32 in [0,1]."""

    matte: torch.Tensor | None = None  # the mask: 1 dreams, 0 keeps the source
    regions: Mapping[str, torch.Tensor] = field(default_factory=dict)  # region(NAME, ...)

    @classmethod
    def of(cls, mattes: Mapping[str, torch.Tensor]) -> FrameMasks:
        """From ``(H,W)`` mattes keyed ``"mask"`` and ``"region:NAME"`` (other keys are
        ignored, so a frame's uploaded arrays can be passed whole)."""
        regions = {
            k.removeprefix(_REGION): v[None, None]
            for k, v in mattes.items()
            if k.startswith(_REGION)
        }
        matte = mattes[MASK][None, None] if MASK in mattes else None
        return cls(matte, regions)

    @classmethod
    def upload(cls, mattes: Mapping[str, np.ndarray], device: torch.device) -> FrameMasks:
        """From ``(H,W)`` host mattes, copied to ``device``."""
        return cls.of(
            {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in mattes.items()}
        )


def unit_rgb(frame: np.ndarray) -> np.ndarray:
    """``(H,W,3)`` uint8, uint16 or float [0,1] as float32 in [0,1]."""
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    if frame.dtype == np.uint16:
        return frame.astype(np.float32) / 65535.0
    return frame.astype(np.float32, copy=False)


def luma(frame: np.ndarray) -> np.ndarray:
    """``(H,W,3)`` RGB -> ``(H,W)`` float32 luma (BT.709) in [0,1]."""
    return unit_rgb(frame[..., :3]) @ _LUMA_WEIGHTS


def luma_key(frame: np.ndarray, low: float, high: float) -> np.ndarray:
    """1 where the frame's luma (BT.709, 0..1) is within ``low..high``, a soft edge outside."""
    y = luma(frame)
    inside = np.minimum(y - low, high - y)
    return np.clip(inside / LUMA_SOFTNESS + 1.0, 0.0, 1.0).astype(np.float32)


def color_key(frame: np.ndarray, color: tuple[int, int, int], tolerance: float) -> np.ndarray:
    """1 within ``tolerance`` (RGB distance in 0..255 units) of ``color``, fading to 0 over
    another ``KEY_FADE * tolerance``."""
    rgb = unit_rgb(frame[..., :3]) * 255.0
    d = np.linalg.norm(rgb - np.asarray(color, np.float32), axis=-1)
    fade = KEY_FADE * tolerance
    return np.clip((tolerance + fade - d) / fade, 0.0, 1.0).astype(np.float32)


def feather(matte: np.ndarray, pixels: float) -> np.ndarray:
    """A soft edge about ``pixels`` wide: a Gaussian blur with sigma ``pixels / 2``."""
    if pixels <= 0:
        return matte
    import cv2

    return cv2.GaussianBlur(matte, (0, 0), pixels / 2.0, borderType=cv2.BORDER_REPLICATE)


def finish(matte: np.ndarray, invert: bool, pixels: float) -> np.ndarray:
    """A raw matte inverted when asked and feathered: ``(H,W)`` float32 in [0,1]."""
    matte = np.clip(matte.astype(np.float32, copy=False), 0.0, 1.0)
    return feather(1.0 - matte if invert else matte, pixels)


def composite(source: torch.Tensor, dream: torch.Tensor, matte: torch.Tensor | None):
    """``dream`` where ``matte`` is 1, ``source`` where it is 0: ``(1,3,H,W)`` each, matte
    ``(1,1,H,W)``; ``None`` keeps the dream everywhere."""
    if matte is None:
        return dream
    return source + matte * (dream - source)


def inside_mean(change: torch.Tensor, matte: torch.Tensor | None) -> torch.Tensor:
    """Mean ``|change|`` over the matte's area (the whole frame without one): a masked dream's
    strength, comparable with an unmasked one's. 0-dim, no device sync."""
    if matte is None:
        return change.abs().mean()
    return (change.abs() * matte).sum() / (matte.sum() * change.shape[1] + 1e-8)
