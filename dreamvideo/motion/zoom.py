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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dreamvideo.engine.ascent import AscentParams
from dreamvideo.engine.color import color_stats, match_color
from dreamvideo.engine.device import blur, constant, to_float, to_tensor, to_uint8, to_uint16
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
    img: np.ndarray,
    step: Motion | np.ndarray,
    center: tuple[float, float] = (0.5, 0.5),
    lanczos: bool = True,
) -> np.ndarray:
    """Move the previous dream by one frame's ``step`` (or by a 2x3 matrix from
    :func:`affine_matrix`): sub-pixel, Lanczos (else bicubic), reflected borders.

    Lanczos resampling keeps fine detail through hundreds of repeated warps, where bilinear
    would soften the picture a little more every frame; a frame moved once (an in-between)
    loses next to nothing to bicubic, which is 13 times faster.
    """
    h, w = img.shape[:2]
    out = cv2.warpAffine(
        img,
        _matrix((w, h), step, center),
        (w, h),
        flags=cv2.INTER_LANCZOS4 if lanczos else cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    return np.clip(out, 0.0, 1.0, out=out)


def _matrix(
    size: tuple[int, int], step: Motion | np.ndarray, center: tuple[float, float]
) -> np.ndarray:
    return step if isinstance(step, np.ndarray) else affine_matrix(size, step, center)


def _source_grid(m: np.ndarray, h: int, w: int, device: torch.device) -> torch.Tensor:
    """Where each pixel of the moved frame comes from: ``(H,W,2)`` source (x, y) in pixels."""
    inv = torch.from_numpy(cv2.invertAffineTransform(m)).to(device, torch.float32)
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    return torch.stack([sx, sy], dim=-1)


def feedback_step_device(
    img: torch.Tensor, step: Motion | np.ndarray, center: tuple[float, float] = (0.5, 0.5)
) -> torch.Tensor:
    """:func:`feedback_step` for a ``(1,3,H,W)`` tensor where it lies (a GPU): an affine
    ``grid_sample``, bicubic with mirrored borders (Lanczos is not offered there; a test
    checks the two agree closely)."""
    _, _, h, w = img.shape
    src = _source_grid(_matrix((w, h), step, center), h, w, img.device)
    grid = torch.stack([2 * src[..., 0] / (w - 1) - 1, 2 * src[..., 1] / (h - 1) - 1], -1)[None]
    out = F.grid_sample(
        img.float(), grid, mode="bicubic", padding_mode="reflection", align_corners=True
    )
    return out.clamp_(0.0, 1.0)


def move(
    img: torch.Tensor,
    step: Motion | np.ndarray,
    center: tuple[float, float] = (0.5, 0.5),
    lanczos: bool = True,
) -> torch.Tensor:
    """One frame's motion (or a 2x3 matrix's) for a ``(1,3,H,W)`` frame: Lanczos (or
    bicubic) on the CPU, bicubic ``grid_sample`` on a GPU (the frame never leaves it)."""
    if img.device.type == "cpu":
        return to_tensor(feedback_step(to_float(img), step, center, lanczos), img.device)
    return feedback_step_device(img, step, center)


def compose(matrices: list[np.ndarray]) -> np.ndarray:
    """The 2x3 matrix of moving by each of ``matrices`` in turn (the first first)."""
    m = np.eye(3)
    for step in matrices:
        m = np.vstack([step, [0.0, 0.0, 1.0]]) @ m
    return m[:2]


SEEN_EDGE = 4.0  # pixels over which an in-between fades off a neighbour's border


def seen(m: np.ndarray, size: tuple[int, int], device: torch.device) -> torch.Tensor | float:
    """``(1,1,H,W)`` in [0,1]: where a frame moved by ``m`` shows its own pixels (1) rather
    than reflected borders (0), with a soft edge of :data:`SEEN_EDGE` pixels; plain 1.0 where
    the whole frame is its own (a zoom in)."""
    w, h = size
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)
    inv = cv2.invertAffineTransform(m)
    src = corners @ inv[:, :2].T + inv[:, 2]
    if (src >= 0).all() and (src[:, 0] <= w - 1).all() and (src[:, 1] <= h - 1).all():
        return 1.0  # the source of every pixel lies inside (an affine move keeps it convex)
    grid = _source_grid(m, h, w, device)
    inside = torch.minimum(
        torch.minimum(grid[..., 0], (w - 1) - grid[..., 0]),
        torch.minimum(grid[..., 1], (h - 1) - grid[..., 1]),
    )
    return (inside / SEEN_EDGE + 1.0).clamp_(0.0, 1.0)[None, None]


def in_between(
    before: torch.Tensor,
    after: torch.Tensor,
    forward: np.ndarray,
    back: np.ndarray,
    a: float,
    energies: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """A frame a share ``a`` (0..1) of the way from the dream ``before`` to the dream
    ``after`` (both ``(1,3,H,W)``): ``before`` moved by ``forward`` (its move to this time)
    and ``after`` by ``back`` (the inverse of its move from this time), blended by time.
    ``energies``: :func:`energy` of ``before`` and ``after``, when the caller has them (the
    in-betweens of one pair of dreams share them).

    Where one of them shows a reflected border (a zoom out of ``after``, a pan) the other's
    own pixels are taken; where both do, ``before``'s reflection, as the move itself does.
    Resampling (at half a pixel, bicubic keeps half the finest detail's energy) and the
    blend of two slightly different textures (the ascent between the dreams moves their
    detail) both flatten the finest band, which would pulse at the rate of the dreamed
    frames: that band is scaled back so the luma keeps the detail energy the two dreams
    have, by time.
    """
    size = (before.shape[3], before.shape[2])
    x, y = move(before, forward, lanczos=False), move(after, back, lanczos=False)
    wx = (1.0 - a) * seen(forward, size, before.device) + 1e-6
    wy = a * seen(back, size, before.device)
    mixed = (wx * x + wy * y) / (wx + wy)
    coarse = _smooth(mixed)
    fine = mixed - coarse
    # the gain g that gives coarse + g * fine the luma detail energy the dreams have, by
    # time: the Laplacian is linear, so that energy is a quadratic in g
    e_before, e_after = energies if energies is not None else (energy(before), energy(after))
    lc, lf = _luma_laplacian(coarse), _luma_laplacian(fine)
    a2, b = lf.square().mean(), (lc * lf).mean()
    c = lc.square().mean() - ((1.0 - a) * e_before + a * e_after)
    gain = (-b + (b.square() - a2 * c).clamp(min=0.0).sqrt()) / (a2 + 1e-12)
    return (coarse + gain.clamp(1.0, MAX_DETAIL_GAIN) * fine).clamp_(0.0, 1.0)


MAX_DETAIL_GAIN = 2.0  # the most an in-between's finest band is scaled back up
LUMA = (0.299, 0.587, 0.114)  # Rec. 601 weights: the finest detail the eye sees is in luma


def _smooth(img: torch.Tensor) -> torch.Tensor:
    """A 3x3 binomial blur of ``(1,3,H,W)``: what it removes is the finest band (the one a
    sub-pixel move weakens most)."""
    return blur(img, (0.25, 0.5, 0.25))


def _luma_laplacian(img: torch.Tensor) -> torch.Tensor:
    """The Laplacian of the luma of ``(1,3,H,W)``: ``(1,1,H,W)``, the finest detail one sees."""
    luma = (img * constant(LUMA, img.device)[None, :, None, None]).sum(1, True)
    k = constant(((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0)), img.device)
    return F.conv2d(F.pad(luma, (1, 1, 1, 1), mode="replicate"), k[None, None])


def energy(img: torch.Tensor) -> torch.Tensor:
    """Mean square of :func:`_luma_laplacian` of ``img``: 0-dim, on its device."""
    return _luma_laplacian(img).square().mean()


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
    """Frame counts and schedules of a zoom animation.

    Frame counts and times are the file's frames. With ``every`` N > 1 only every Nth frame
    (a *key*) is dreamed and the frames between are made by :func:`in_between`; the stepper
    counts keys (key k is file frame k*N), and a loop's counts are multiples of N."""

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
    every: int = 1  # dream every Nth frame; the frames between are in-betweens
    scale: float = 1.0  # pans are in pixels of a frame this many times smaller (--upscale)

    @property
    def end(self) -> int:
        """File frames up to the last one written (the warm-up and the loop's closing
        frames included)."""
        return self.warmup + self.frames + self.loop_frames

    @property
    def keys(self) -> int:
        """Keys dreamed in all: the warm-up, the file's (and one past its end when the last
        frames are in-betweens), the loop's closing ones."""
        if self.loop_frames:
            return self.end // self.every
        return self.warmup // self.every + -(-(self.frames - 1) // self.every) + 1

    @property
    def rendered(self) -> int:
        """File frames the keys span (``time(keys - 1) + 1``)."""
        return self.time(self.keys - 1) + 1

    def time(self, key: int) -> int:
        """The file frame of ``key``."""
        return key * self.every

    def envelopes_at(self, t: int) -> dict[str, float] | None:
        return self.audio.at(t) if self.audio is not None else None

    def motion_at(self, t: int) -> Motion:
        """The move from file frame ``t - 1`` to ``t``."""
        fps, audio = float(self.fps), self.envelopes_at(t)
        z, r, px, py = (s.value(t, fps, audio) for s in self.motion)
        return Motion(z, r, px * self.scale, py * self.scale).per_frame(fps)

    def moves(self, start: int, end: int, size: tuple[int, int]) -> np.ndarray:
        """The 2x3 matrix of the move from file frame ``start`` to ``end`` (``size`` = (w, h))."""
        return compose(
            [affine_matrix(size, self.motion_at(t), self.center) for t in range(start + 1, end + 1)]
        )

    def params_at(self, t: int, full: AscentParams) -> AscentParams:
        """The ascent of file frame ``t``: ``full`` for the first, the keyframed light one
        after."""
        if t == 0:
            return full
        fps, audio = float(self.fps), self.envelopes_at(t)
        params = replace(
            full, octaves=self.octaves, iterations=round(self.iterations.value(t, fps, audio))
        )
        if self.step is not None:
            params = replace(params, step=self.step.value(t, fps, audio))
        return params

    def in_file(self, key: int) -> str:
        """Where the in-betweens that lead into ``key`` go: "file" (before it), "tail" (at the
        end of a loop: they lead from its last frame into its first) or "" (none)."""
        first = (self.warmup + self.loop_frames) // self.every  # the file's first key
        if self.every == 1 or key < first or (key == 0):
            return ""
        return "tail" if key == first and self.loop_frames else "file"


@dataclass(frozen=True)
class ZoomState:
    """Where a zoom render stands: the next key, the last dream, the loop's head, the colour
    reference and the in-betweens held for a loop's end."""

    next: int  # key to dream next
    prev: torch.Tensor | None  # (1,3,H,W) float [0,1] on the device: the last key's frame
    head: np.ndarray  # (K,H,W,3) uint8 (uint16 when deep): the loop's first keys, written last
    reference: torch.Tensor | None = None  # (2,3) colour statistics of the first dream
    tail: np.ndarray | None = None  # (N-1,H,W,3): in-betweens from the loop's end to its start

    @classmethod
    def start(cls, plan: ZoomPlan, size: tuple[int, int]) -> ZoomState:
        dtype = np.uint16 if plan.deep else np.uint8
        keys = plan.loop_frames // plan.every
        return cls(0, None, np.zeros((keys, size[1], size[0], 3), dtype))

    def to_arrays(self) -> dict[str, np.ndarray | torch.Tensor]:
        """What a checkpoint saves (tensors are copied to the host only then)."""
        arrays = {"next": np.int64(self.next), "prev": self.prev}
        optional = {"reference": self.reference, "tail": self.tail}
        arrays |= {k: v for k, v in optional.items() if v is not None}
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
            arrays.get("tail"),
        )


# dream(x, params, t): (1,3,H,W) float [0,1] -> the same, dreamed towards file frame t's
# objective
ZoomDream = Callable[[torch.Tensor, AscentParams, int], torch.Tensor]


def step_zoom(
    dream: ZoomDream, plan: ZoomPlan, full: AscentParams, start: torch.Tensor, state: ZoomState
) -> tuple[np.ndarray | None, ZoomState]:
    """Dream key ``state.next``: the start picture, or the last key moved to its time.

    ``start``: ``(1,3,H,W)`` on the dreamer's device. Returns the ``(H,W,3)`` uint8 frame to
    write (``None`` while the loop's head is held back) and the new state, whose ``prev`` is
    the key's frame. The head's frames are written last, reached through the dissolve of
    :func:`loop_input` (counted in keys).
    """
    k, head, n = state.next, state.head, plan.every
    warmup, loop, frames = plan.warmup // n, plan.loop_frames // n, plan.frames // n
    held = k - warmup  # index into the head while 0 <= held < loop
    closing = k - warmup - frames  # >= 0 while the loop closes
    t = plan.time(k)
    if loop and closing == loop - 1:
        # the last frame is the head's own, so end -> start plays as an ordinary step
        frame = head[closing]
        return frame, replace(state, next=k + 1, prev=to_tensor(frame, state.prev.device))
    if k == 0:
        x = start
    else:
        x = move(state.prev, plan.moves(plan.time(k - 1), t, (start.shape[3], start.shape[2])))
    if loop and closing >= 0:
        field = torch.from_numpy(dissolve_field((x.shape[3], x.shape[2]), plan.seed))
        x = loop_input(x, to_tensor(head[closing], x.device), closing, loop, field.to(x.device))
    out = dream(x, plan.params_at(t, full), t)
    reference = state.reference
    if plan.color_match == "first" and reference is None:
        reference = color_stats(out)
    elif plan.color_match != "none":
        out = match_color(out, reference if plan.color_match == "first" else color_stats(x))
    frame = _as_frame(out, plan.deep)
    if 0 <= held < loop:
        head[held] = frame
    written = frame if held >= loop and t < plan.end else None
    return written, ZoomState(k + 1, out, head, reference, state.tail)


def zoom_frames(
    dream: ZoomDream,
    plan: ZoomPlan,
    full: AscentParams,
    start: torch.Tensor,
    state: ZoomState,
    done: int = 0,
) -> Iterator[tuple[np.ndarray | None, ZoomState | None, int]]:
    """The file's frames from where ``state`` stands (``done`` of them written): ``(frame,
    state, t)`` per key of file frame ``t`` (``frame`` ``None`` while held back), each key
    preceded by the in-betweens that lead into it (``state`` ``None``: not a point to resume
    from). A loop ends with the in-betweens that lead from its last key into its first."""
    size, n = (start.shape[3], start.shape[2]), plan.every
    while state.next < plan.keys:
        k, before = state.next, state.prev
        frame, state = step_zoom(dream, plan, full, start, state)
        t0, t1 = plan.time(k - 1), plan.time(k)
        where = plan.in_file(k)
        if where:
            times = range(t0 + 1, min(t1, plan.end))
            energies = (energy(before), energy(state.prev))
            betweens = [
                _as_frame(
                    in_between(
                        before,
                        state.prev,
                        plan.moves(t0, t, size),
                        cv2.invertAffineTransform(plan.moves(t, t1, size)),
                        (t - t0) / n,
                        energies,
                    ),
                    plan.deep,
                )
                for t in times
            ]
            if where == "tail":
                state = replace(state, tail=np.stack(betweens))
            else:
                done += len(betweens)
                yield from ((b, None, t) for b, t in zip(betweens, times, strict=True))
        done += frame is not None
        yield frame, state, t1
    if state.tail is not None and done < plan.frames:
        left = plan.frames - done  # the tail's frames not yet written (all, or none)
        times = range(plan.end - left, plan.end)
        yield from ((b, None, t) for b, t in zip(state.tail[-left:], times, strict=True))


def _as_frame(img: torch.Tensor, deep: bool) -> np.ndarray:
    return to_uint16(img) if deep else to_uint8(img)
