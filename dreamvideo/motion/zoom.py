"""Zoom-feedback loops (no I/O): per-frame affine steps from per-second rates, start
pictures, the dissolve that closes a loop, and the stepper that dreams frame after frame.

Arrays are ``(H,W,3)`` float32 in ``[0,1]``; the stepper keeps its frames as ``(1,3,H,W)``
tensors on the dreamer's device, so on a GPU a frame is moved and dreamed without a trip
through the CPU. Rates are per second, so 30 and 60 fps give the same motion per second: the
per-frame zoom is ``zoom_per_second ** (1/fps)``, the per-frame angle ``degrees_per_second /
fps`` and the per-frame pan ``pixels_per_second / fps``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dreamvideo.engine.ascent import AscentParams
from dreamvideo.engine.color import color_stats, match_color
from dreamvideo.engine.device import to_float, to_tensor, to_uint8, to_uint16
from dreamvideo.motion.envelopes import Envelopes
from dreamvideo.motion.schedule import Schedule


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


def feedback_step_device(
    img: torch.Tensor, step: Motion, center: tuple[float, float] = (0.5, 0.5)
) -> torch.Tensor:
    """:func:`feedback_step` for a ``(1,3,H,W)`` tensor where it lies (a GPU): an affine
    ``grid_sample``, bicubic with mirrored borders (Lanczos is not offered there; a test
    checks the two agree closely)."""
    _, _, h, w = img.shape
    inv = torch.from_numpy(cv2.invertAffineTransform(affine_matrix((w, h), step, center)))
    inv = inv.to(img.device, torch.float32)
    ys, xs = torch.meshgrid(
        torch.arange(h, device=img.device, dtype=torch.float32),
        torch.arange(w, device=img.device, dtype=torch.float32),
        indexing="ij",
    )
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    grid = torch.stack([2 * sx / (w - 1) - 1, 2 * sy / (h - 1) - 1], dim=-1)[None]
    out = F.grid_sample(
        img.float(), grid, mode="bicubic", padding_mode="reflection", align_corners=True
    )
    return out.clamp_(0.0, 1.0)


def move(img: torch.Tensor, step: Motion, center: tuple[float, float]) -> torch.Tensor:
    """One frame's motion for a ``(1,3,H,W)`` frame: Lanczos on the CPU, ``grid_sample`` on
    a GPU (the frame never leaves it)."""
    if img.device.type == "cpu":
        return to_tensor(feedback_step(to_float(img), step, center), img.device)
    return feedback_step_device(img, step, center)


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


@functools.lru_cache(maxsize=4)
def dissolve_field(size: tuple[int, int], seed: int) -> np.ndarray:
    """A smooth random field, ``(H,W)`` float32, evenly spread over [0,1]: the moment at
    which each pixel of a loop's tail switches to the head (see :func:`loop_input`)."""
    w, h = size
    rng = np.random.default_rng(seed + 1)
    small = rng.random((max(2, h // 24), max(2, w // 24)), dtype=np.float32)
    field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    ranks = np.empty(field.size, np.float32)
    ranks[np.argsort(field, axis=None)] = np.linspace(0.0, 1.0, field.size, dtype=np.float32)
    return ranks.reshape(h, w)


DISSOLVE_EDGE = 0.15  # share of the dissolve over which one pixel fades (a soft edge)


def loop_input(
    moved: torch.Tensor, head: torch.Tensor, i: int, frames: int, field: torch.Tensor
) -> torch.Tensor:
    """The picture dreamed for frame ``i`` of a ``frames``-long loop closing: the moved last
    dream, with pixels switching to the head's frame ``i`` at the moments in ``field``.

    A loop of N frames is rendered as N + K frames f (after the plan's warm-up). The file
    holds f[K:N], then K closing frames g[i] = dream(loop_input(move(g[i-1]), f[i], i, K)),
    the last being f[K-1] itself, so playing it on repeat, end -> start is an ordinary step
    of the animation. Unlike a
    cross-fade, each pixel comes from one picture or the other (but for a soft edge), and
    the dream on top heals the seams: no double exposure, no softening.
    """
    w = (i + 1) / frames * (1 + DISSOLVE_EDGE)
    mask = ((w - field) / DISSOLVE_EDGE).clamp_(0.0, 1.0)[None, None]
    return moved + mask * (head - moved)


# --------------------------------------------------------------------------- the zoom stepper


@dataclass(frozen=True)
class ZoomPlan:
    """Frame counts and schedules of a zoom animation."""

    fps: Fraction
    frames: int  # frames in the file
    loop_frames: int  # extra frames rendered to close the loop into the start
    motion: tuple[Schedule, Schedule, Schedule, Schedule]  # zoom, rotate, pan_x, pan_y
    iterations: Schedule
    step: Schedule | None
    layers: Schedule  # objective texts
    octaves: int  # octaves of frames after the first
    center: tuple[float, float]  # zoom and rotation centre, relative (x, y)
    audio: Envelopes | None = None  # drives the schedules' expressions
    color_match: str = "none"  # dreamvideo.engine.color.COLOR_MATCHES
    seed: int = 0  # of the loop's dissolve pattern
    # frames dreamed before the file's first (a loop's head comes from the settled animation,
    # not from its first second, while detail is still growing out of the start picture)
    warmup: int = 0
    deep: bool = False  # frames come out as uint16 (for 16-bit or float files), not uint8

    @property
    def rendered(self) -> int:
        return self.warmup + self.frames + self.loop_frames

    def envelopes_at(self, t: int) -> dict[str, float] | None:
        return self.audio.at(t) if self.audio is not None else None

    def motion_at(self, t: int) -> Motion:
        fps, audio = float(self.fps), self.envelopes_at(t)
        z, r, px, py = (s.value(t, fps, audio) for s in self.motion)
        return Motion(z, r, px, py).per_frame(fps)

    def params_at(self, t: int, full: AscentParams) -> AscentParams:
        """The ascent of frame ``t``: ``full`` for the first, the keyframed light one after."""
        if t == 0:
            return full
        fps, audio = float(self.fps), self.envelopes_at(t)
        params = replace(
            full, octaves=self.octaves, iterations=round(self.iterations.value(t, fps, audio))
        )
        if self.step is not None:
            params = replace(params, step=self.step.value(t, fps, audio))
        return params


@dataclass(frozen=True)
class ZoomState:
    """Where a zoom render stands: the next frame, the last dream, the loop's head and the
    colour reference."""

    next: int  # frame number to dream next
    prev: torch.Tensor | None  # (1,3,H,W) float [0,1] on the device: the last dream
    head: np.ndarray  # (K,H,W,3) uint8 (uint16 when deep): the first K frames, written last
    reference: torch.Tensor | None = None  # (2,3) colour statistics of the first dream

    @classmethod
    def start(cls, plan: ZoomPlan, size: tuple[int, int]) -> ZoomState:
        dtype = np.uint16 if plan.deep else np.uint8
        return cls(0, None, np.zeros((plan.loop_frames, size[1], size[0], 3), dtype))

    def to_arrays(self) -> dict[str, np.ndarray | torch.Tensor]:
        """What a checkpoint saves (tensors are copied to the host only then)."""
        arrays = {"next": np.int64(self.next), "prev": self.prev}
        if self.reference is not None:
            arrays["reference"] = self.reference
        return {**arrays, "head": self.head} if len(self.head) else arrays

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        plan: ZoomPlan,
        size: tuple[int, int],
        device: torch.device,
    ) -> ZoomState:
        head = arrays.get("head", cls.start(plan, size).head)
        reference = arrays.get("reference")
        return cls(
            int(arrays["next"]),
            torch.from_numpy(arrays["prev"]).to(device),
            head,
            None if reference is None else torch.from_numpy(reference).to(device),
        )


# dream(x, params, t): (1,3,H,W) float [0,1] -> the same, dreamed towards frame t's objective
ZoomDream = Callable[[torch.Tensor, AscentParams, int], torch.Tensor]


def step_zoom(
    dream: ZoomDream, plan: ZoomPlan, full: AscentParams, start: torch.Tensor, state: ZoomState
) -> tuple[np.ndarray | None, ZoomState]:
    """Dream frame ``state.next``: the start picture, or the last dream moved one step.

    ``start``: ``(1,3,H,W)`` on the dreamer's device. Returns the ``(H,W,3)`` uint8 frame to
    write (``None`` while the loop's head is held back) and the new state. The head's frames
    are written last, reached through the dissolve of :func:`loop_input`.
    """
    t, head = state.next, state.head
    held = t - plan.warmup  # index into the head while 0 <= held < loop_frames
    closing = t - plan.warmup - plan.frames  # >= 0 while the loop closes
    if plan.loop_frames and closing == plan.loop_frames - 1:
        # the last frame is the head's own, so end -> start plays as an ordinary step
        return head[closing], ZoomState(t + 1, state.prev, head, state.reference)
    x = start if t == 0 else move(state.prev, plan.motion_at(t), plan.center)
    if closing >= 0:
        field = torch.from_numpy(dissolve_field((x.shape[3], x.shape[2]), plan.seed))
        x = loop_input(
            x, to_tensor(head[closing], x.device), closing, plan.loop_frames, field.to(x.device)
        )
    out = dream(x, plan.params_at(t, full), t)
    reference = state.reference
    if plan.color_match == "first" and reference is None:
        reference = color_stats(out)
    elif plan.color_match != "none":
        out = match_color(out, reference if plan.color_match == "first" else color_stats(x))
    frame = to_uint16(out) if plan.deep else to_uint8(out)
    if 0 <= held < plan.loop_frames:
        head[held] = frame
    written = frame if held >= plan.loop_frames else None
    return written, ZoomState(t + 1, out, head, reference)
