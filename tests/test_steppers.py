"""The per-frame steppers with a fake dreamer (milliseconds), and the registry of names."""

import time
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import NO_BLOW_UP

from dreamvideo import names
from dreamvideo.config import DreamConfig, VideoConfig, ZoomConfig
from dreamvideo.engine.ascent import NORMALIZATIONS, AscentParams
from dreamvideo.engine.color import COLOR_MATCHES
from dreamvideo.engine.models import _SPECS
from dreamvideo.media.codecs import CODECS, CONTAINERS
from dreamvideo.motion.clip import Carry, ClipSteps, Tracked, step_clip
from dreamvideo.motion.flow import DIS_PRESETS, FLOW_METHODS
from dreamvideo.motion.schedule import EASINGS, parse_schedule
from dreamvideo.motion.zoom import ZoomPlan, ZoomState, step_zoom, zoom_frames
from dreamvideo.render.clip import clip_steps

FULL = AscentParams(
    octaves=3, octave_scale=1.4, iterations=10, step=2.0, jitter=0, normalize="mean", tile=0
)
H, W = 12, 16


class FakeDreamer:
    """Adds a fixed pattern, more of it for more iterations; remembers what it was asked."""

    params = FULL

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.pattern = torch.rand(1, 3, H, W, generator=g) * 2 - 1
        self.calls: list[tuple[AscentParams, torch.Tensor | None]] = []
        self.sizes: list[tuple[int, int]] = []

    def __call__(self, img, params=None, *, step_map=None, pull=None):
        params = params or self.params
        self.calls.append((params, step_map))
        self.sizes.append(tuple(img.shape[-2:]))
        gain = 0.01 * params.iterations * (1.0 if step_map is None else step_map)
        pattern = torch.nn.functional.interpolate(self.pattern, size=img.shape[-2:], mode="area")
        return (img + gain * pattern).clamp(0, 1)


def still(value=0.5):
    frame = np.full((H, W, 3), round(value * 255), np.uint8)
    return frame, torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255


def still_track(coverage=1.0):
    return Tracked(torch.zeros(H, W, 2), torch.full((H, W), coverage), coverage)


def strengths(steps: ClipSteps, frames: int = 30) -> list[float]:
    dreamer, carry, out = FakeDreamer(), None, []
    frame, cur = still()
    for t in range(frames):
        dream, carry, _ = step_clip(
            dreamer, steps, frame, cur, None if t == 0 else still_track(), carry
        )
        out.append(float((dream - cur).abs().mean()))
    return out


def test_clip_stepper_holds_the_shots_strength():
    t0 = time.perf_counter()
    steps = clip_steps(VideoConfig(blend=1.0, tracked_step=1.0), FULL)
    held = strengths(steps)
    piled = strengths(
        clip_steps(VideoConfig(blend=1.0, tracked_step=1.0, hold_strength=False), FULL)
    )
    assert time.perf_counter() - t0 < NO_BLOW_UP
    # the controller steers back to the first frame's strength within a few frames
    assert all(abs(h / held[0] - 1) < 0.05 for h in held[8:])
    assert piled[-1] > 2 * piled[0]  # without it the touch-ups pile up


def test_hold_gain_keeps_sparse_touch_ups_from_fading():
    def last(gain: float) -> float:
        config = VideoConfig(blend=0.9, tracked_step=0.1, stride=4, hold_gain=gain)
        held = strengths(clip_steps(config, FULL))
        return held[-1] / held[0]

    faded, held = last(1.0), last(1.5)
    assert faded < 0.3  # the carried residual loses 10 % a frame; weak, sparse touch-ups lag
    assert abs(held - 1) < 0.1  # scaled back up to the shot's strength


def test_clip_stepper_touches_up_lightly_and_restarts_at_cuts():
    dreamer = FakeDreamer()
    steps = clip_steps(
        VideoConfig(next_octaves=1, next_iterations=2, tracked_step=0.25, scene_cut=0.3), FULL
    )
    frame, cur = still()
    _, carry, fresh = step_clip(dreamer, steps, frame, cur, None, None)
    assert fresh and dreamer.calls[-1] == (FULL, None)
    _, carry, fresh = step_clip(dreamer, steps, frame, cur, still_track(0.9), carry)
    params, step_map = dreamer.calls[-1]
    assert not fresh and (params.octaves, params.iterations) == (1, 2)
    assert torch.allclose(step_map, torch.full((1, 1, H, W), 1 - 0.75 * 0.9))
    _, carry, fresh = step_clip(dreamer, steps, frame, cur, still_track(0.1), carry)
    assert fresh and dreamer.calls[-1][0] == FULL  # a scene cut: the full dream again


def test_a_stride_touches_up_every_nth_frame_and_only_carries_between():
    dreamer, carry = FakeDreamer(), None
    steps = clip_steps(VideoConfig(stride=3, blend=1.0, hold_strength=False), FULL)
    frame, cur = still()
    touched, prev = [], None
    for t in range(10):
        before = len(dreamer.calls)
        out, carry, _ = step_clip(
            dreamer, steps, frame, cur, None if t == 0 else still_track(), carry
        )
        touched.append(len(dreamer.calls) > before)
        if t and not touched[-1]:  # carried only: the previous dream, warped (here: still)
            assert torch.allclose(out, prev, atol=1e-6)
        prev = out
    assert touched == [True, False, False, True, False, False, True, False, False, True]
    again = Carry.from_arrays(
        {k: np.asarray(v) for k, v in carry.to_arrays().items()}, torch.device("cpu")
    )
    assert again.since == carry.since == 0


def test_the_carried_dream_follows_a_known_motion():
    """A camera move of (2, 1) pixels a frame: the residual carried onto frame 1 is frame 0's
    residual moved by the same amount (a carry that ignored the flow would leave it in place,
    and one that negated it would move it the other way)."""
    dreamer = FakeDreamer()
    steps = clip_steps(VideoConfig(stride=2, blend=1.0, hold_strength=False), FULL)
    frame, cur = still()
    first, carry, _ = step_clip(dreamer, steps, frame, cur, None, carry=None)
    flow = torch.zeros(H, W, 2)
    flow[..., 0], flow[..., 1] = -2.0, -1.0  # backward: frame 1 at x shows frame 0 at x - (2, 1)
    moved = Tracked(flow, torch.ones(H, W), 1.0)
    second, _, _ = step_clip(dreamer, steps, frame, cur, moved, carry)  # carried, not touched
    before, after = first - cur, second - cur
    assert torch.allclose(after[..., 1:, 2:], before[..., :-1, :-2], atol=1e-5)
    assert not torch.allclose(after[..., 1:, 2:], before[..., 1:, 2:], atol=1e-2)


class WanderingDreamer(FakeDreamer):
    """Adds a new pattern on every call (touch-ups that wander); remembers each pull."""

    def __init__(self) -> None:
        super().__init__()
        self.pulls: list[torch.Tensor] = []

    def __call__(self, img, params=None, *, step_map=None, pull=None):
        self.pulls.append(None if pull is None else pull[0].clone())
        self.pattern = torch.rand(
            1, 3, H, W, generator=torch.Generator().manual_seed(len(self.pulls))
        )
        return super().__call__(img, params, step_map=step_map) - 0.005 * params.iterations


def test_a_longer_memory_pulls_towards_the_average_of_the_last_dreams():
    frame, cur = still()
    config = VideoConfig(temporal=0.5, memory=4, blend=1.0, hold_strength=False)
    steps, dreamer, carry = clip_steps(config, FULL), WanderingDreamer(), None
    residuals, average = [], None
    for t in range(8):
        out, carry, _ = step_clip(
            dreamer, steps, frame, cur, None if t == 0 else still_track(), carry
        )
        if t:  # the pull aimed at the running average of the dreams so far (the flow is still)
            assert torch.allclose(dreamer.pulls[-1], (cur + average).clamp(0, 1), atol=1e-5)
        residuals.append(out - cur)
        average = residuals[0] if t == 0 else average + (residuals[-1] - average) / 4
    assert not torch.allclose(average, residuals[-1], atol=1e-3)  # it remembers, not copies
    again = Carry.from_arrays(
        {k: np.asarray(v) for k, v in carry.to_arrays().items()}, torch.device("cpu")
    )
    assert torch.allclose(again.anchor, carry.anchor)  # a resume keeps the memory
    short = clip_steps(VideoConfig(temporal=0.5, blend=1.0, hold_strength=False), FULL)
    _, first, _ = step_clip(WanderingDreamer(), short, frame, cur, None, None)
    assert first.anchor is None  # memory 1: the previous dream is the target, nothing kept


def test_dream_scale_dreams_a_small_copy_and_keeps_the_carried_detail():
    dreamer = FakeDreamer()
    steps = clip_steps(VideoConfig(dream_scale=0.5), FULL)
    big, half = (4 * H, 4 * W), (2 * H, 2 * W)
    detail = torch.rand(1, 3, *big, generator=torch.Generator().manual_seed(1))
    out = steps.ascend(dreamer, detail, FULL)
    assert dreamer.sizes == [half] and out.shape == detail.shape
    # the full-size frame keeps its own detail; only the small dream's change is added
    low = torch.nn.functional.interpolate(detail, size=half, mode="area")
    change = torch.nn.functional.interpolate(FakeDreamer()(low) - low, size=big, mode="bilinear")
    assert torch.allclose(out, (detail + change).clamp(0, 1), atol=1e-6)
    assert (out - detail).abs().mean() > 0.01


def test_carry_round_trips_through_a_checkpoint():
    steps = clip_steps(VideoConfig(), FULL)
    frame, cur = still(0.3)
    _, carry, _ = step_clip(FakeDreamer(), steps, frame, cur, None, None)
    saved = {
        k: v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        for k, v in carry.to_arrays().items()
    }
    again = Carry.from_arrays(saved, torch.device("cpu"))
    a, _, _ = step_clip(FakeDreamer(), steps, frame, cur, still_track(), carry)
    b, _, _ = step_clip(FakeDreamer(), steps, frame, cur, still_track(), again)
    assert torch.equal(a, b)


def zoom_plan(frames=6, loop=2, every=1, warmup=0) -> ZoomPlan:
    def n(v):
        return parse_schedule(v, "k")

    return ZoomPlan(
        Fraction(12),
        frames,
        loop,
        (n(1.2), n(0.0), n(0.0), n(0.0)),
        n("0: 4, 4: 8"),
        None,
        parse_schedule("blocks.3", "k", numbers=False),
        1,
        (0.5, 0.5),
        warmup=warmup,
        every=every,
    )


def flat_dream(asked):
    """A fake dream whose frame at file time t is flat t/100 (and says which times it saw)."""

    def dream(x, params, t):
        asked.append(t)
        return x * 0 + t / 100

    return dream


@pytest.mark.parametrize(
    "frames, keys, resumable", [(8, [0, 3, 6, 9], [0, 3, 6]), (10, [0, 3, 6, 9], [0, 3, 6, 9])]
)
def test_interpolated_zoom_dreams_every_nth_frame_and_writes_every_frame(frames, keys, resumable):
    """Flat keys blend linearly, so every frame t of the file is t/100 if the in-betweens take
    their neighbours at the right times and weights; frames past the last key need one more."""
    plan, asked = zoom_plan(frames, loop=0, every=3), []
    state = ZoomState.start(plan, (W, H))
    out = list(zoom_frames(flat_dream(asked), plan, FULL, torch.zeros(1, 3, H, W), state))
    written = [f for f, _, _ in out if f is not None]
    assert asked == keys
    assert [round(f.mean()) for f in written] == [round(t * 255 / 100) for t in range(frames)]
    # only dreamed frames are points to resume from
    assert [t for f, s, t in out if s is not None and f is not None] == resumable


def test_an_interpolated_loop_ends_with_the_in_betweens_into_its_first_frame():
    # 6 frames of warm-up (t 0..5), 6 of the head (t 6..11, written last), 12 in the file
    # (6 of them closing the loop); keys every 3 frames
    plan, asked = zoom_plan(12, loop=6, every=3, warmup=6), []
    state = ZoomState.start(plan, (W, H))
    out = list(zoom_frames(flat_dream(asked), plan, FULL, torch.zeros(1, 3, H, W), state))
    written = [round(float(f.mean()) / 2.55) for f, _, _ in out if f is not None]
    assert asked == [0, 3, 6, 9, 12, 15, 18]  # the last key (t 21) is the head's own (t 9)
    # the file starts after the head (t 12); the closing key t 18 leads into the head's last
    # key (t 9: in-betweens 2/3*18 + 1/3*9, 1/3*18 + 2/3*9); then the in-betweens from it
    # into the file's first frame (t 10, 11), so the end plays into the start
    assert written == [12, 13, 14, 15, 16, 17, 18, 15, 12, 9, 10, 11]


def test_zoom_state_keeps_the_loops_in_betweens_through_a_checkpoint():
    plan = zoom_plan(12, loop=6, every=3, warmup=6)
    state = ZoomState(5, torch.rand(1, 3, H, W), np.zeros((2, H, W, 3), np.uint8))
    state = replace(state, tail=np.full((2, H, W, 3), 7, np.uint8))
    saved = {
        k: v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        for k, v in state.to_arrays().items()
    }
    back = ZoomState.from_arrays(saved, plan, (W, H), torch.device("cpu"))
    assert back.tail is not None and np.array_equal(back.tail, state.tail)


def test_zoom_stepper_holds_the_loop_head_and_ends_on_it():
    plan, asked = zoom_plan(), []

    def dream(x, params, t):
        asked.append((t, params.iterations, params.octaves))
        return x * 0 + t / 10  # frame t is flat t/10

    state = ZoomState.start(plan, (W, H))
    start = torch.zeros(1, 3, H, W)
    written = []
    while state.next < plan.rendered:
        image, state = step_zoom(dream, plan, FULL, start, state)
        written.append(None if image is None else int(image[0, 0, 0]))
    # frames 0, 1 held back; 2..5 as they come; 6 dreamed towards frame 0; the last is frame 1
    assert written[:2] == [None, None]
    assert np.allclose(written[2:], [51, 76.5, 102, 127.5, 153, 25.5], atol=1)
    assert [t for t, _, _ in asked] == [0, 1, 2, 3, 4, 5, 6]  # the last frame is not dreamed
    assert asked[0] == (0, FULL.iterations, FULL.octaves)
    assert asked[1] == (1, 5, 1) and asked[4] == (4, 8, 1)  # keyframed iterations


def test_zoom_state_round_trips_through_a_checkpoint():
    plan = zoom_plan()
    state = ZoomState(
        3,
        torch.rand(1, 3, H, W),
        np.arange(2 * H * W * 3, dtype=np.uint8).reshape(2, H, W, 3),
        torch.rand(2, 3),
    )
    saved = {
        k: v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        for k, v in state.to_arrays().items()
    }
    again = ZoomState.from_arrays(saved, plan, (W, H), torch.device("cpu"))
    assert again.next == 3 and torch.equal(again.prev, state.prev)
    assert np.array_equal(again.head, state.head) and torch.equal(again.reference, state.reference)


def test_every_name_has_an_implementation_and_the_config_offers_exactly_those():
    assert set(_SPECS) == set(names.MODELS)
    assert set(FLOW_METHODS) == set(names.FLOWS) >= set(names.METRIC_FLOWS)
    assert set(DIS_PRESETS) == set(names.DIS_PRESETS)
    assert set(NORMALIZATIONS) == set(names.NORMALIZATIONS)
    assert set(EASINGS) == set(names.INTERPOLATIONS)
    assert set(COLOR_MATCHES) == set(names.COLOR_MATCHES)
    assert set(CODECS) == set(names.CODECS) - {"auto"}
    assert set(CONTAINERS) == set(names.VIDEO_SUFFIXES)

    def choices(section, key):
        return next(
            f.metadata["choices"] for f in section.__dataclass_fields__.values() if f.name == key
        )

    assert choices(DreamConfig, "model") == names.MODELS
    assert choices(DreamConfig, "normalize") == names.NORMALIZATIONS
    assert choices(VideoConfig, "flow") == names.FLOWS
    assert choices(VideoConfig, "flow_preset") == names.DIS_PRESETS
    assert choices(ZoomConfig, "interpolation") == names.INTERPOLATIONS
    assert choices(ZoomConfig, "start") == names.ZOOM_STARTS


@pytest.mark.parametrize("flow", names.METRIC_FLOWS)
def test_every_offline_flow_follows_a_known_shift(flow):
    from conftest import pan_frames

    from dreamvideo.motion.flow import make_flow

    a, b = pan_frames(2, (64, 48), step=(2.0, 1.0))
    backward = make_flow(flow)(b, a)  # b(x) ~ a(x + flow): the content moved by +(2, 1)
    assert np.allclose(np.median(backward[8:-8, 8:-8].reshape(-1, 2), axis=0), (-2, -1), atol=0.3)


def test_a_ramped_fresh_dream_comes_out_at_once_then_grows_to_the_full_strength_and_holds():
    """Live: the first picture is dreamed with a touch-up's iterations on every octave, the
    rest of the full dream follows on the next frames, and the shot then holds the strength
    the full dream reaches; a render (no ramp) dreams it all on the first frame."""
    full = strengths(clip_steps(VideoConfig(blend=1.0, tracked_step=1.0), FULL), 3)[0]
    steps = replace(clip_steps(VideoConfig(blend=1.0, tracked_step=1.0), FULL), ramp=2)
    dreamer, carry, got = FakeDreamer(), None, []
    frame, cur = still()
    for t in range(20):
        dream, carry, _ = step_clip(
            dreamer, steps, frame, cur, None if t == 0 else still_track(), carry
        )
        got.append(float((dream - cur).abs().mean()))
    firsts = [p.iterations for p, _ in dreamer.calls[:6]]
    assert firsts == [1, 2, 2, 2, 2, 1] and all(p.octaves == FULL.octaves for p, _ in
                                               dreamer.calls[:6])  # fmt: skip
    assert got[0] < 0.15 * full  # a light first picture, at once
    assert all(b > a for a, b in zip(got[:6], got[1:6], strict=False))  # growing
    assert abs(got[5] / full - 1) < 0.1  # the full dream's strength, once all of it ran
    # then held, after the controller's first steps (as after a full dream at once)
    assert all(abs(g / full - 1) < 0.05 for g in got[13:])
