"""The clip stepper (no I/O): how each frame of a clip is dreamed from the one before.

Frame 0 and every scene cut get the full dream. Each later frame starts from itself plus the
previous dream's residual (dream - source) warped along the source's optical flow where the
occlusion mask trusts it, and gets a lighter ascent: gently on carried pixels, fully on newly
revealed ones. A small controller scales the carried residual so the shot keeps the strength
of its first frame. Everything stays on the dreamer's device between frames.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from dreamvideo.engine.ascent import AscentParams
from dreamvideo.engine.color import color_stats, match_color
from dreamvideo.engine.masks import FrameMasks, composite, inside_mean
from dreamvideo.motion.flow import carry_residual, follow


class DreamFn(Protocol):
    """What the stepper needs of a :class:`dreamvideo.engine.dreamer.Dreamer` (tests pass fakes)."""

    params: AscentParams

    def __call__(
        self,
        img: torch.Tensor,
        params: AscentParams | None = None,
        *,
        step_map: torch.Tensor | None = None,
        pull: tuple[torch.Tensor, torch.Tensor] | None = None,
        regions: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class ClipSteps:
    """The clip settings the stepper uses (``video`` of the config; see
    :func:`dreamvideo.render.clip.clip_steps`)."""

    later: AscentParams  # the touch-up ascent of frames after the first
    blend: float  # share of the residual carried over, 0..1
    tracked_step: float  # step on carried pixels as a share of the full step, 0..1
    hold_strength: bool  # steer the carried residual to keep the shot's strength
    scene_cut: float  # restart below this coverage, 0..1
    color_match: str = "none"  # dreamvideo.engine.color.COLOR_MATCHES; "first": of each shot
    dream_scale: float = 1.0  # ascents run at this fraction of the frame size
    stride: int = 1  # touch up every stride-th frame; between them the residual is only carried
    temporal: float = 0.0  # pull towards the warped previous dream per step, on followed pixels
    hold_gain: float = 1.0  # how far the controller may scale the carried residual up
    memory: int = 1  # the pull's target: motion-following average of this many frames' dreams
    # the touch-ups' share of the frame size (None: dream_scale). An upscaled clip touches up
    # at the size asked for: its fine detail is dreamed once and then carried, not redreamed
    # every frame (which flickers)
    touch_scale: float | None = None
    # live: a fresh dream (a first frame, a cut) runs its octaves with one iteration on that
    # frame, then this many on each frame after, until its full count has run: the first
    # picture comes out at once and the dream grows on the frames that follow; 0: all at
    # once (renders)
    ramp: int = 0

    def ascend(
        self,
        dream: DreamFn,
        x: torch.Tensor,
        params: AscentParams,
        scale: float | None = None,
        **kw,
    ) -> torch.Tensor:
        """``dream(x)`` at ``scale`` (default ``dream_scale``) of the size: the change the
        ascent makes on the small copy is upsampled and added to ``x`` at full size, so the
        carried detail keeps its full resolution while the ascent costs ``scale**2`` as much."""
        scale = self.dream_scale if scale is None else scale
        if scale >= 1.0:
            return dream(x, params, **kw)
        h, w = x.shape[-2:]
        size = (max(16, round(h * scale)), max(16, round(w * scale)))

        def small(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, size=size, mode="area")

        if kw.get("step_map") is not None:
            kw["step_map"] = small(kw["step_map"])
        if kw.get("pull") is not None:
            kw["pull"] = (small(kw["pull"][0]), small(kw["pull"][1]))
        if kw.get("regions"):
            kw["regions"] = {name: small(r) for name, r in kw["regions"].items()}
        low = small(x)
        change = F.interpolate(dream(low, params, **kw) - low, size=(h, w), mode="bilinear")
        return (x + change).clamp(0.0, 1.0)

    def with_step(self, step: float) -> ClipSteps:
        """These settings with the touch-ups' step size set to ``step`` (one frame's value)."""
        return replace(self, later=replace(self.later, step=step))

    def colored(self, out: torch.Tensor, cur: torch.Tensor, reference: torch.Tensor | None):
        """``out`` with its colours matched as asked: to its source frame ``cur``, or to the
        shot's first dream (``reference``, its statistics; ``None`` on that first frame)."""
        if self.color_match == "source":
            return match_color(out, color_stats(cur))
        if self.color_match == "first" and reference is not None:
            return match_color(out, reference)
        return out


@dataclass(frozen=True)
class Carry:
    """What frame t needs from frame t-1."""

    prev_frame: np.ndarray  # (H,W,3) uint8 or uint16 source frame t-1 (host: the flow runs there)
    prev_source: torch.Tensor  # (1,3,H,W) float [0,1], the same frame on the device
    prev_dream: torch.Tensor  # (1,3,H,W) float [0,1], its dream
    target: torch.Tensor  # 0-dim: mean |dream - source| of the shot's full dream (0..1)
    cap: torch.Tensor  # 0-dim: mean carried residual allowed now (0..1)
    reference: torch.Tensor | None = None  # (2,3) colour statistics of the shot's first dream
    since: int = 0  # frames carried since the last touch-up (video.stride)
    # (1,3,H,W) residual averaged over the last video.memory dreams along the motion; the
    # temporal pull's target when that memory is longer than one frame, else None
    anchor: torch.Tensor | None = None
    owed: int = 0  # iterations of the shot's full dream still to run (ClipSteps.ramp)

    def to_arrays(self) -> dict[str, np.ndarray | torch.Tensor]:
        """For a checkpoint (tensors are copied to the host when saved)."""
        arrays = {
            "prev_source": self.prev_frame,
            "prev_dream": self.prev_dream,
            "target": self.target,
            "cap": self.cap,
            "since": np.int64(self.since),
        }
        optional = {"reference": self.reference, "anchor": self.anchor}
        owed = {"owed": np.int64(self.owed)} if self.owed else {}
        return {**arrays, **owed, **{k: v for k, v in optional.items() if v is not None}}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], device: torch.device) -> Carry:
        frame = arrays["prev_source"]
        top = 65535.0 if frame.dtype == np.uint16 else 255.0
        source = torch.from_numpy(np.ascontiguousarray(frame).astype(np.float32)).to(device)

        def optional(key: str) -> torch.Tensor | None:
            return torch.from_numpy(arrays[key]).to(device) if key in arrays else None

        return cls(
            frame,
            source.permute(2, 0, 1)[None].div_(top),
            torch.from_numpy(arrays["prev_dream"]).to(device),
            *(torch.as_tensor(arrays[k], device=device) for k in ("target", "cap")),
            optional("reference"),
            int(arrays.get("since", 0)),
            optional("anchor"),
            int(arrays.get("owed", 0)),
        )


@dataclass(frozen=True)
class Tracked:
    """How the current frame follows the previous one, on the dreamer's device."""

    flow: torch.Tensor  # (H,W,2) backward flow in pixels
    mask: torch.Tensor  # (H,W) 1 = carried over, 0 = occluded
    coverage: float  # mean of mask


def step_clip(
    dream: DreamFn,
    steps: ClipSteps,
    frame: np.ndarray,
    cur: torch.Tensor,
    tracked: Tracked | None,
    carry: Carry | None,
    masks: FrameMasks | None = None,
) -> tuple[torch.Tensor, Carry, bool]:
    """Dream one frame. ``frame``: ``(H,W,3)`` uint8; ``cur``: the same as ``(1,3,H,W)``
    float [0,1] on the device; ``tracked``: ``None`` for the first frame; ``masks``: the
    frame's mask and regions. Where the mask is black the frame is its source: the steps and
    the carried residual are multiplied by the mask and the dream is composited through it,
    so nothing leaks in over frames; the strength is measured inside it.

    Returns the dream ``(1,3,H,W)``, the carry for the next frame and whether the frame was
    dreamed afresh (first frame or scene cut).
    """
    fresh = tracked is None or carry is None or tracked.coverage < steps.scene_cut
    remember = steps.temporal > 0 and steps.memory > 1
    matte = masks.matte if masks is not None else None
    kw = {"regions": masks.regions} if masks is not None and masks.regions else {}
    if fresh:
        full = dream.params  # ramped: the first picture with one iteration on each octave
        owed = full.iterations - 1 if steps.ramp else 0
        first = replace(full, iterations=full.iterations - owed)
        dreamed = steps.ascend(dream, cur, first, step_map=matte, **kw)
        out = composite(cur, steps.colored(dreamed, cur, None), matte)
        now = inside_mean(out - cur, matte)
        reference = color_stats(out) if steps.color_match == "first" else None
        anchor = out - cur if remember else None
        return out, Carry(frame, cur, out, now, now, reference, anchor=anchor, owed=owed), True
    assert tracked is not None and carry is not None
    if carry.owed:
        return _ramped(dream, steps, frame, cur, tracked, carry, matte, kw)
    init = carry_residual(
        cur,
        carry.prev_dream,
        carry.prev_source,
        tracked.flow,
        tracked.mask,
        steps.blend,
        carry.cap if steps.hold_strength else None,
        steps.hold_gain,
        matte,
    )
    mask = tracked.mask[None, None]
    # the longer memory: the average residual of the last frames, moved along the motion
    held = follow(carry.anchor, tracked.flow) if remember and carry.anchor is not None else None
    since = carry.since + 1
    if since < steps.stride:  # between touch-ups the residual is only carried
        out = composite(cur, steps.colored(init, cur, carry.reference), matte)
    else:
        since = 0
        # carried-over pixels get a gentler touch-up than newly revealed ones, and with a
        # temporal weight each step also pulls them back towards the warped previous dream
        # (or the warped average of the last video.memory dreams)
        step_map = 1.0 - (1.0 - steps.tracked_step) * mask
        if matte is not None:
            step_map = step_map * matte
        target = init if held is None else (cur + held).clamp(0.0, 1.0)
        pull = (target, steps.temporal * mask) if steps.temporal else None
        touched = steps.ascend(
            dream, init, steps.later, steps.touch_scale, step_map=step_map, pull=pull, **kw
        )
        out = composite(cur, steps.colored(touched, cur, carry.reference), matte)
    now = inside_mean(out - cur, matte)
    # steer the carried share so touch-up and all end at the shot's strength
    cap = carry.cap * carry.target / (now + 1e-8)
    anchor = None
    if remember:  # where the motion is followed, mix this frame into the average
        anchor = out - cur
        if held is not None:
            anchor = anchor + mask * (1.0 - 1.0 / steps.memory) * (held - anchor)
    return out, Carry(frame, cur, out, carry.target, cap, carry.reference, since, anchor), False


def _ramped(
    dream: DreamFn,
    steps: ClipSteps,
    frame: np.ndarray,
    cur: torch.Tensor,
    tracked: Tracked,
    carry: Carry,
    matte: torch.Tensor | None,
    kw: dict,
) -> tuple[torch.Tensor, Carry, bool]:
    """A frame early in a shot whose full dream is spread over its first frames
    (``ClipSteps.ramp``): the residual carried as it is (no strength to hold yet), then the
    full dream's octaves with the next share of its iterations, on every pixel. When the
    last share is run, the strength reached is the shot's, held from then on."""
    init = carry_residual(cur, carry.prev_dream, carry.prev_source, tracked.flow, tracked.mask,
                          steps.blend, None, 1.0, matte)  # fmt: skip
    share = min(max(steps.ramp, 1), carry.owed)
    params = replace(dream.params, iterations=share)
    out = composite(cur, steps.colored(steps.ascend(dream, init, params, step_map=matte, **kw),
                                       cur, carry.reference), matte)  # fmt: skip
    now = inside_mean(out - cur, matte)
    owed = carry.owed - share
    target = now if not owed else carry.target
    anchor = out - cur if carry.anchor is not None else None
    return out, Carry(frame, cur, out, target, now, carry.reference, 0, anchor, owed), False
