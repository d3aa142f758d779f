"""Zoom-feedback motion (pure): per-frame affine steps from per-second rates, start pictures,
and the cross-fade that closes a loop.

Arrays are ``(H,W,3)`` float32 in ``[0,1]``. Rates are per second, so 30 and 60 fps give the
same motion per second: the per-frame zoom is ``zoom_per_second ** (1/fps)``, the per-frame
angle ``degrees_per_second / fps`` and the per-frame pan ``pixels_per_second / fps``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Motion:
    """Camera motion per second: zoom factor (>1 moves in), degrees (counter-clockwise),
    pan in pixels (the camera moves right/down, so the picture moves left/up)."""

    zoom: float = 1.0
    rotate: float = 0.0
    pan_x: float = 0.0
    pan_y: float = 0.0

    def per_frame(self, fps: float) -> Motion:
        return Motion(self.zoom ** (1.0 / fps), self.rotate / fps, self.pan_x / fps,
                      self.pan_y / fps)


def affine_matrix(size: tuple[int, int], step: Motion, center: tuple[float, float] = (0.5, 0.5)
                  ) -> np.ndarray:
    """The 2x3 matrix mapping the previous frame onto the next for one ``step``.

    ``size`` = (w, h); ``center`` is the zoom/rotation centre relative to the frame.
    """
    w, h = size
    cx, cy = center[0] * (w - 1), center[1] * (h - 1)
    m = cv2.getRotationMatrix2D((cx, cy), step.rotate, step.zoom)
    m[0, 2] -= step.pan_x
    m[1, 2] -= step.pan_y
    return m


def feedback_step(img: np.ndarray, step: Motion, center: tuple[float, float] = (0.5, 0.5)
                  ) -> np.ndarray:
    """Move the previous dream by one frame's ``step``: sub-pixel, Lanczos, reflected borders.

    Lanczos resampling keeps fine detail through hundreds of repeated warps, where bilinear
    would soften the picture a little more every frame.
    """
    h, w = img.shape[:2]
    out = cv2.warpAffine(img, affine_matrix((w, h), step, center), (w, h),
                         flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT_101)
    return np.clip(out, 0.0, 1.0, out=out)


def cover(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``rgb`` (uint8) to cover ``size`` = (w, h) and crop the middle; float32 ``[0,1]``."""
    w, h = size
    f = max(w / rgb.shape[1], h / rgb.shape[0])
    sw, sh = max(w, round(rgb.shape[1] * f)), max(h, round(rgb.shape[0] * f))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    big = cv2.resize(rgb, (sw, sh), interpolation=interp)
    x0, y0 = (sw - w) // 2, (sh - h) // 2
    return big[y0:y0 + h, x0:x0 + w].astype(np.float32) / 255.0


def noise_start(size: tuple[int, int], seed: int, scale: int = 8) -> np.ndarray:
    """Soft coloured noise around mid-grey to dream from when no picture is given."""
    w, h = size
    rng = np.random.default_rng(seed)
    small = rng.random((max(2, h // scale), max(2, w // scale), 3), dtype=np.float32)
    smooth = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    fine = rng.random((h, w, 3), dtype=np.float32)
    return np.clip(0.5 + 0.25 * (smooth - 0.5) + 0.08 * (fine - 0.5), 0.0, 1.0)


def color_start(size: tuple[int, int], rgb: tuple[int, int, int]) -> np.ndarray:
    """A flat colour frame; the dream grows from the jitter and the network's own biases."""
    w, h = size
    return np.broadcast_to(np.asarray(rgb, np.float32) / 255.0, (h, w, 3)).copy()


def loop_blend(tail: np.ndarray, head: np.ndarray, i: int, frames: int) -> np.ndarray:
    """Frame ``i`` of a ``frames``-long cross-fade from the render's continuation to its start.

    A loop of N frames is rendered as N + K frames f. Its last N - K frames f[K:N] are
    written as they come; then come ``loop_blend(f[N+i], f[i], i, K)`` for i < K, fading from
    the continuation f[N+i] (which follows f[N-1] naturally) into f[i]. The file's last frame
    is exactly f[K-1] and its first is f[K]: playing it on repeat, end -> start is an ordinary
    step of the animation; the only trace of the loop is a 1/K dissolve after f[N-1].
    """
    w = (i + 1) / frames
    return (1.0 - w) * tail + w * head
