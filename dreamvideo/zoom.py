"""Zoom-feedback loops (no I/O): per-frame affine steps from per-second rates, start
pictures, the cross-fade that closes a loop, and the stepper that dreams frame after frame.

Arrays are ``(H,W,3)`` float32 in ``[0,1]``. Rates are per second, so 30 and 60 fps give the
same motion per second: the per-frame zoom is ``zoom_per_second ** (1/fps)``, the per-frame
angle ``degrees_per_second / fps`` and the per-frame pan ``pixels_per_second / fps``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction

import cv2
import numpy as np
import torch

from dreamvideo.ascent import AscentParams
from dreamvideo.device import to_float, to_uint8
from dreamvideo.schedule import Schedule


@dataclass(frozen=True)
class Motion:
    """Camera motion per second: zoom factor (>1 moves in), degrees (counter-clockwise),
    pan in pixels (the camera moves right/down, so the picture moves left/up)."""

    zoom: float = 1.0
    rotate: float = 0.0
    pan_x: float = 0.0
    pan_y: float = 0.0

    def per_frame(self, fps: float) -> Motion:
        return Motion(
            self.zoom ** (1.0 / fps), self.rotate / fps, self.pan_x / fps, self.pan_y / fps
        )


def affine_matrix(
    size: tuple[int, int], step: Motion, center: tuple[float, float] = (0.5, 0.5)
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


def feedback_step(
    img: np.ndarray, step: Motion, center: tuple[float, float] = (0.5, 0.5)
) -> np.ndarray:
    """Move the previous dream by one frame's ``step``: sub-pixel, Lanczos, reflected borders.

    Lanczos resampling keeps fine detail through hundreds of repeated warps, where bilinear
    would soften the picture a little more every frame.
    """
    h, w = img.shape[:2]
    out = cv2.warpAffine(
        img,
        affine_matrix((w, h), step, center),
        (w, h),
        flags=cv2.INTER_LANCZOS4,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    return np.clip(out, 0.0, 1.0, out=out)


def cover(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``rgb`` (uint8) to cover ``size`` = (w, h) and crop the middle; float32 ``[0,1]``."""
    w, h = size
    f = max(w / rgb.shape[1], h / rgb.shape[0])
    sw, sh = max(w, round(rgb.shape[1] * f)), max(h, round(rgb.shape[0] * f))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    big = cv2.resize(rgb, (sw, sh), interpolation=interp)
    x0, y0 = (sw - w) // 2, (sh - h) // 2
    return big[y0 : y0 + h, x0 : x0 + w].astype(np.float32) / 255.0


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


# --------------------------------------------------------------------------- the zoom stepper


@dataclass(frozen=True)
class ZoomPlan:
    """Frame counts and schedules of a zoom animation."""

    fps: Fraction
    frames: int  # frames in the file
    loop_frames: int  # extra frames rendered to cross-fade the end into the start
    motion: tuple[Schedule, Schedule, Schedule, Schedule]  # zoom, rotate, pan_x, pan_y
    iterations: Schedule
    step: Schedule | None
    layers: Schedule  # objective texts
    octaves: int  # octaves of frames after the first
    center: tuple[float, float]  # zoom and rotation centre, relative (x, y)

    @property
    def rendered(self) -> int:
        return self.frames + self.loop_frames

    def motion_at(self, t: int) -> Motion:
        z, r, px, py = (s.value(t, float(self.fps)) for s in self.motion)
        return Motion(z, r, px, py).per_frame(float(self.fps))

    def params_at(self, t: int, full: AscentParams) -> AscentParams:
        """The ascent of frame ``t``: ``full`` for the first, the keyframed light one after."""
        if t == 0:
            return full
        params = replace(
            full, octaves=self.octaves, iterations=round(self.iterations.value(t, float(self.fps)))
        )
        if self.step is not None:
            params = replace(params, step=self.step.value(t, float(self.fps)))
        return params


@dataclass(frozen=True)
class ZoomState:
    """Where a zoom render stands: the next frame, the last dream and the loop's head."""

    next: int  # frame number to dream next
    prev: np.ndarray | None  # (H,W,3) float32 [0,1], the last dream
    head: np.ndarray  # (K,H,W,3) uint8: the first K frames, written blended at the end

    @classmethod
    def start(cls, plan: ZoomPlan, size: tuple[int, int]) -> ZoomState:
        return cls(0, None, np.zeros((plan.loop_frames, size[1], size[0], 3), np.uint8))

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"next": np.int64(self.next), "prev": self.prev}
        return {**arrays, "head": self.head} if len(self.head) else arrays

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], plan: ZoomPlan, size: tuple[int, int]
    ) -> ZoomState:
        head = arrays.get("head", cls.start(plan, size).head)
        return cls(int(arrays["next"]), arrays["prev"], head)


# dream(x, params, t): (H,W,3) float32 [0,1] -> (1,3,H,W) float [0,1] tensor, dreamed towards
# frame t's objective
ZoomDream = Callable[[np.ndarray, AscentParams, int], torch.Tensor]


def step_zoom(
    dream: ZoomDream, plan: ZoomPlan, full: AscentParams, start: np.ndarray, state: ZoomState
) -> tuple[np.ndarray | None, ZoomState]:
    """Dream frame ``state.next``: the start picture, or the last dream moved one step.

    Returns the ``(H,W,3)`` uint8 frame to write (``None`` while the loop's head is held
    back) and the new state. The head's frames are written last, cross-faded from the
    continuation (see :func:`loop_blend`).
    """
    t = state.next
    x = start if t == 0 else feedback_step(state.prev, plan.motion_at(t), plan.center)
    out = dream(x, plan.params_at(t, full), t)
    prev, frame = to_float(out), to_uint8(out)
    image: np.ndarray | None = frame
    if t < plan.loop_frames:
        state.head[t], image = frame, None
    elif t >= plan.frames:
        i = t - plan.frames
        image = np.round(255 * loop_blend(prev, state.head[i] / 255.0, i, plan.loop_frames)).astype(
            np.uint8
        )
    return image, ZoomState(t + 1, prev, state.head)
