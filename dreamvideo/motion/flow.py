"""Optical flow between SOURCE frames, backward warping and the occlusion mask (pure functions).

Conventions: frames are ``(H,W,3)`` arrays; a flow is ``(H,W,2)`` float32 in pixels, ``[...,0]``
horizontal. The *backward* flow ``b`` of frame t points from t to t-1:
``cur(x) ~ prev(x + b(x))``, so ``warp(prev, b)`` lines the previous frame up with the current.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from dreamvideo.engine.masks import inside_mean

# dreamvideo.names.DIS_PRESETS -> OpenCV's constants
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
# the smallest frame side DIS accepts (it fails below 12 pixels); clips are checked against it
MIN_FLOW_SIDE = 16

# A flow method: (from_rgb, to_rgb) uint8 -> (H,W,2) flow with from(x) ~ to(x + flow(x)).
FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def dis_flow(preset: str = "medium") -> FlowFn:
    """OpenCV's DIS optical flow (fast, dense, robust), one estimator reused between calls."""
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    return lambda a, b: dis.calc(_gray(a), _gray(b), None)


def farneback_flow() -> FlowFn:
    """OpenCV's Farneback flow: slower and smoother than DIS."""
    return lambda a, b: cv2.calcOpticalFlowFarneback(
        _gray(a), _gray(b), None, 0.5, 4, 21, 4, 7, 1.5, 0
    )


def raft_flow(model: torch.nn.Module, device: torch.device) -> FlowFn:
    """torchvision's RAFT (``model`` with weights loaded): slow, the most accurate."""

    def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h, w = a.shape[:2]
        ph, pw = -h % 8, -w % 8  # RAFT needs sizes divisible by 8

        def prep(rgb: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1)[None]
            t = t.float() / 127.5 - 1.0
            return torch.nn.functional.pad(t, (0, pw, 0, ph), mode="replicate")

        with torch.no_grad():
            out = model(prep(a), prep(b))[-1]
        return out[0, :, :h, :w].permute(1, 2, 0).float().cpu().numpy()

    return flow


# dreamvideo.names.FLOWS -> builder(dis_preset, raft_model, device); RAFT's weights are
# loaded by the caller (file I/O stays out of this module)
FLOW_METHODS: dict[str, Callable[[str, torch.nn.Module | None, torch.device], FlowFn]] = {
    "dis": lambda preset, raft, device: dis_flow(preset),
    "farneback": lambda preset, raft, device: farneback_flow(),
    "raft": lambda preset, raft, device: raft_flow(raft, device),  # type: ignore[arg-type]
}


def per_thread(make: Callable[[], FlowFn]) -> FlowFn:
    """A flow method that gives each thread calling it its own estimator from ``make`` (an
    estimator keeps buffers between calls, so threads finding flows at once cannot share
    one)."""
    local = threading.local()

    def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if not hasattr(local, "fn"):
            local.fn = make()
        return local.fn(a, b)

    return flow


def make_flow(
    name: str,
    preset: str = "medium",
    raft: torch.nn.Module | None = None,
    device: torch.device | None = None,
) -> FlowFn:
    """The flow method ``name`` (one of :data:`dreamvideo.names.FLOWS`)."""
    if name == "raft" and raft is None:
        raise ValueError("the raft flow needs its loaded model")
    return FLOW_METHODS[name](preset, raft, device or torch.device("cpu"))


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def warp(img: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Backward warp: ``out(x) = img(x + flow(x))``, edges replicated.

    ``img``: ``(H,W)`` or ``(H,W,C)`` (float32 keeps residuals exact); ``flow``: ``(H,W,2)``.
    Bilinear by default; cubic keeps fine detail that is warped again and again.
    """
    if flow.shape[:2] != img.shape[:2] or flow.shape[-1] != 2:
        raise ValueError(f"flow {flow.shape} does not fit image {img.shape}")
    gx, gy = _grid(*flow.shape[:2])
    return cv2.remap(
        img, gx + flow[..., 0], gy + flow[..., 1], interpolation, borderMode=cv2.BORDER_REPLICATE
    )


def occlusion_mask(backward: np.ndarray, forward: np.ndarray, blur: int = 5) -> np.ndarray:
    """Where the backward flow can be trusted: ``(H,W)`` float32, 1 = tracked, 0 = occluded.

    Forward-backward check (Ruder et al. 2016): with ``f~`` the forward flow (t-1 -> t) sampled
    at ``x + b(x)``, a pixel is occluded where ``|f~ + b|^2 > 0.01 (|f~|^2 + |b|^2) + 0.5``.
    Pixels whose source lies outside the previous frame are occluded too. The mask is
    blurred so fresh and carried-over dream blend without a hard edge.
    """
    h, w = backward.shape[:2]
    f_at = warp(forward, backward)
    bad = (
        np.square(f_at + backward).sum(-1)
        > 0.01 * (np.square(f_at).sum(-1) + np.square(backward).sum(-1)) + 0.5
    )
    gx, gy = _grid(h, w)
    sx, sy = gx + backward[..., 0], gy + backward[..., 1]
    bad |= (sx < -0.5) | (sx > w - 0.5) | (sy < -0.5) | (sy > h - 0.5)
    mask = (~bad).astype(np.float32)
    if blur > 1:
        mask = cv2.GaussianBlur(mask, (blur, blur), 0)
    return mask


@dataclass(frozen=True)
class Track:
    """How frame t follows frame t-1."""

    flow: np.ndarray  # (H,W,2) backward flow t -> t-1
    mask: np.ndarray  # (H,W) float32, 1 where t-1's content can be carried over
    coverage: float  # mean of mask; very low means a scene cut


def eight_bit(rgb: np.ndarray) -> np.ndarray:
    """``(H,W,3)`` uint8 or uint16 RGB as uint8: what the flow estimators take."""
    return rgb if rgb.dtype == np.uint8 else (rgb >> 8).astype(np.uint8)


def track(
    prev: np.ndarray,
    cur: np.ndarray,
    flow_fn: FlowFn,
    occlusion: bool = True,
    scale: float = 1.0,
) -> Track:
    """Backward flow from ``cur`` to ``prev`` (RGB, uint8 or uint16) and the mask it carries
    reliably.

    ``scale`` < 1 computes both on frames that much smaller and scales them back up (the
    flow's vectors with them): HD motion is smooth enough that half-size flow follows it at
    a quarter of the cost."""
    prev, cur = eight_bit(prev), eight_bit(cur)
    h, w = cur.shape[:2]
    small = (max(MIN_FLOW_SIDE, round(w * scale)), max(MIN_FLOW_SIDE, round(h * scale)))
    if scale < 1.0 and small != (w, h):
        low = track(
            cv2.resize(prev, small, interpolation=cv2.INTER_AREA),
            cv2.resize(cur, small, interpolation=cv2.INTER_AREA),
            flow_fn,
            occlusion,
        )
        flow = cv2.resize(low.flow, (w, h), interpolation=cv2.INTER_LINEAR)
        flow *= np.float32([w / small[0], h / small[1]])
        mask = cv2.resize(low.mask, (w, h), interpolation=cv2.INTER_LINEAR)
        return Track(flow, mask, float(mask.mean()))
    backward = flow_fn(cur, prev)
    if occlusion:
        mask = occlusion_mask(backward, flow_fn(prev, cur))
    else:
        mask = np.ones(backward.shape[:2], np.float32)
    return Track(backward, mask, float(mask.mean()))


def follow(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``x`` ``(1,C,H,W)`` moved along the backward ``flow`` ``(H,W,2)`` (pixels): bicubic,
    edges replicated, on the tensors' device. Bicubic because what is carried is warped once
    per frame, again and again, and bilinear would blur it away."""
    h, w = x.shape[-2:]
    ys = torch.arange(h, device=flow.device, dtype=torch.float32)
    xs = torch.arange(w, device=flow.device, dtype=torch.float32)
    gx = (xs[None, :] + flow[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys[:, None] + flow[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)[None]
    return torch.nn.functional.grid_sample(
        x, grid, mode="bicubic", padding_mode="border", align_corners=True
    )


def carry_residual(
    cur: torch.Tensor,
    prev_dream: torch.Tensor,
    prev_source: torch.Tensor,
    flow: torch.Tensor,
    mask: torch.Tensor,
    blend: float,
    cap: torch.Tensor | None = None,
    max_gain: float = 1.0,
    matte: torch.Tensor | None = None,
) -> torch.Tensor:
    """The next frame's starting point: ``cur + blend * mask * warp(prev_dream - prev_source)``.

    Warping the RESIDUAL (what dreaming added), not the dream itself, keeps the dream's
    strength steady instead of piling patterns up frame after frame. Runs wherever the
    tensors are (the dream stays on the GPU between frames).

    ``cur``, ``prev_dream``, ``prev_source``: ``(1,3,H,W)`` float in ``[0,1]``;
    ``flow``: ``(H,W,2)`` backward flow in pixels; ``mask``: ``(H,W)`` in ``[0,1]``.
    ``cap`` (0-dim, 0..1 units): the carried residual is scaled towards it, down when its
    mean magnitude exceeds it (touch-ups cannot pile up into a dream that grows frame after
    frame) and up by at most ``max_gain`` when it falls short (sparse or half-size touch-ups
    cannot let the dream fade). ``matte`` ``(1,1,H,W)`` (``dream.mask``): the residual is
    carried only where it is white, and its magnitude is measured over its area.
    """
    h, w = cur.shape[-2:]
    if flow.shape != (h, w, 2) or mask.shape != (h, w):
        raise ValueError(
            f"flow {tuple(flow.shape)} / mask {tuple(mask.shape)} do not fit frames of {h}x{w}"
        )
    residual = follow(prev_dream - prev_source, flow)
    residual = blend * mask[None, None] * residual
    if matte is not None:
        residual = residual * matte
    if cap is not None:  # a tensor op, so no device sync
        residual = residual * (cap / (inside_mean(residual, matte) + 1e-8)).clamp(max=max_gain)
    return (cur + residual).clamp_(0.0, 1.0)
