import numpy as np
import pytest
import torch
from conftest import interrupt_at, photo

from dreamvideo.config import Config, ConfigError
from dreamvideo.motion.schedule import ScheduleError, parse_schedule
from dreamvideo.motion.zoom import (
    Motion,
    affine_matrix,
    color_start,
    cover,
    dissolve_field,
    feedback_step,
    feedback_step_device,
    loop_input,
    noise_start,
)


def compose(step: Motion, frames: int, size=(64, 48)) -> np.ndarray:
    m = np.eye(3)
    for _ in range(frames):
        m = np.vstack([affine_matrix(size, step), [0, 0, 1]]) @ m
    return m


@pytest.mark.parametrize("fps, seconds", [(24, 1), (30, 1), (60, 1), (29.97, 100)])
def test_one_second_of_frames_gives_the_per_second_motion(fps, seconds):
    """Frames of one second (100 s at 29.97 fps, a whole number of frames) compose to the
    per-second motion, whatever the frame rate."""
    per_second = Motion(zoom=1.3, rotate=20.0)
    whole = np.linalg.matrix_power(compose(per_second, 1), seconds)
    stepped = compose(per_second.per_frame(fps), round(fps * seconds))
    assert np.allclose(stepped, whole, rtol=1e-6, atol=1e-6 * np.abs(whole).max())


def test_pan_moves_the_picture_against_the_camera():
    img = np.zeros((32, 48, 3), np.float32)
    img[10:20, 20:30] = 1.0
    moved = feedback_step(img, Motion(pan_x=4.0, pan_y=2.0))
    ys, xs = np.nonzero(moved[..., 0] > 0.5)
    assert (xs.min(), ys.min()) == (16, 8)  # camera right/down: content left/up


def test_feedback_step_keeps_detail_better_than_bilinear():
    import cv2

    img = photo("astronaut", 128)[:96].astype(np.float32) / 255
    step = Motion(zoom=1.0, rotate=0.0, pan_x=0.37, pan_y=0.21)
    lanczos, bilinear = img.copy(), img.copy()
    for _ in range(20):
        lanczos = feedback_step(lanczos, step)
        m = affine_matrix((128, 96), step)
        bilinear = cv2.warpAffine(
            bilinear, m, (128, 96), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )

    def sharpness(x):
        return np.abs(np.diff(x[20:-20, 20:-20], axis=1)).mean()

    assert sharpness(lanczos) > 1.3 * sharpness(bilinear)
    assert lanczos.min() >= 0 and lanczos.max() <= 1


def test_start_pictures():
    c = cover(photo("coffee", 200), (64, 64))
    assert c.shape == (64, 64, 3) and c.dtype == np.float32 and 0 <= c.min() <= c.max() <= 1
    n1, n2 = noise_start((40, 30), 1), noise_start((40, 30), 1)
    assert n1.shape == (30, 40, 3) and np.array_equal(n1, n2)
    assert not np.array_equal(n1, noise_start((40, 30), 2))
    assert np.allclose(color_start((4, 3), (255, 0, 128))[1, 2], [1.0, 0.0, 128 / 255])


def test_the_loop_dissolve_takes_each_pixel_from_one_picture_and_ends_on_the_head():
    field = torch.from_numpy(dissolve_field((64, 48), 0))
    assert field.shape == (48, 64) and field.min() == 0 and field.max() == 1
    tail, head = torch.zeros(1, 3, 48, 64), torch.ones(1, 3, 48, 64)
    shares = []
    for i in range(8):
        mix = loop_input(tail, head, i, 8, field)
        shares.append(mix.mean().item())
        blended = ((mix > 0.05) & (mix < 0.95)).float().mean().item()
        assert blended <= 0.16  # a soft edge, not a double exposure of the whole frame
    assert shares == sorted(shares) and shares[0] < 0.1
    assert torch.allclose(loop_input(tail, head, 7, 8, field), head, atol=1e-4)


CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    ],
)


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_the_device_warp_matches_the_lanczos_warp(device):
    img = photo("astronaut", 128)[:96].astype(np.float32) / 255
    for step in (Motion(zoom=1.03, rotate=2.0, pan_x=1.3), Motion(zoom=0.97, pan_y=-2.2)):
        want = feedback_step(img, step, (0.4, 0.6))
        t = torch.from_numpy(img).permute(2, 0, 1)[None].to(device)
        moved = feedback_step_device(t, step, (0.4, 0.6))
        assert moved.device.type == device  # never leaves the device
        got = moved[0].permute(1, 2, 0).cpu().numpy()
        inner = (slice(4, -4), slice(4, -4))  # borders: both mirror, one pixel apart at most
        assert np.abs(got - want)[inner].mean() < 0.01
        assert np.abs(got - want)[inner].max() < 0.25


# ------------------------------------------------------------------ schedules


def test_schedules_interpolate_linearly_smoothly_or_in_steps():
    s = parse_schedule("0: 1.0, 10: 2.0, 20: 1.0", "zoom.zoom")
    assert [s.value(t, 24) for t in (-5, 0, 5, 10, 15, 20, 99)] == pytest.approx(
        [1.0, 1.0, 1.5, 2.0, 1.5, 1.0, 1.0]
    )
    smooth = parse_schedule("smooth: 0: 0, 10: 1", "k")
    assert smooth.value(2.5, 24) == pytest.approx(0.15625)  # 3a^2 - 2a^3 at a = 0.25
    assert smooth.value(5, 24) == pytest.approx(0.5)
    step = parse_schedule("step: 0: 3, 10: 7", "k")
    assert [step.value(t, 24) for t in (0, 9.9, 10)] == [3, 3, 7]


def test_schedule_in_seconds_follows_the_frame_rate():
    s = parse_schedule("0: 1, 2s: 3", "k")
    assert s.value(24, 24) == pytest.approx(2.0)
    assert s.value(60, 60) == pytest.approx(2.0)
    assert parse_schedule(1.25, "k").value(100, 24) == 1.25


def test_objective_schedules_cross_fade_by_weights():
    s = parse_schedule(
        "0: blocks.8, 10: blocks.10:1,5, 20: 0.5*blocks.3", "zoom.layers", numbers=False
    )
    assert s.values() == ["blocks.8", "blocks.10:1,5", "0.5*blocks.3"]
    assert s.weights(5, 24) == [("blocks.8", 0.5), ("blocks.10:1,5", 0.5)]
    assert s.weights(10, 24) == [("blocks.10:1,5", 1.0)]
    assert parse_schedule("blocks.10:42", "k", numbers=False).weights(3, 24) == [
        ("blocks.10:42", 1.0)
    ]


@pytest.mark.parametrize(
    "text, why",
    [
        ("__import__('os').system('ls')", "attribute access"),
        ("0: 1.0, 10: os.system", "attribute access"),
        ("0: 1, 10: 2, 5: 3", "do not increase"),
        ("0: 1, 10:", "has no value"),
        ("1.0, 10: 2", "not a valid expression"),
        ("smooth: 1.0, 10: 2", "does not start with a keyframe"),
        ("0: 1, 2s: 2, 60: 3", "frames and seconds are mixed"),
        ("0: 1e400000", None),
    ],
)
def test_malformed_or_malicious_schedules_are_rejected(text, why):
    if why is None:  # parses to inf, which the config's range check then rejects
        with pytest.raises(ConfigError, match="zoom.zoom: must be <= 100"):
            Config.from_dict({"zoom": {"zoom": text}})
        return
    with pytest.raises(ScheduleError, match=why) as e:
        parse_schedule(text, "zoom.zoom")
    assert str(e.value).startswith("zoom.zoom: ") and "\n" not in str(e.value)
    if "keyframe" in why or "increase" in why or "mixed" in why:
        assert "0: 1.05, 120: 1.3" in str(e.value)  # the shape a schedule must have


def test_config_checks_every_keyframe_value():
    with pytest.raises(ConfigError, match="zoom.iterations: must be >= 0"):
        Config.from_dict({"zoom": {"iterations": "0: 3, 10: -1"}})
    with pytest.raises(ConfigError, match="zoom.layers: keyframe 5 has no value"):
        Config.from_dict({"zoom": {"layers": "0: blocks.8, 5:"}})
    cfg = Config.from_dict({"zoom": {"zoom": "smooth: 0: 1.05, 5s: 1.3"}})
    assert cfg.zoom.zoom == "smooth: 0: 1.05, 5s: 1.3"


# ------------------------------------------------------------------ renders


def zoom_cfg(**zoom):
    base = {
        "seconds": 1.0,
        "fps": 12,
        "width": 64,
        "height": 48,
        "iterations": 1,
        "zoom": 1.5,
        "rotate": 10.0,
        "checkpoint_every": 4,
    }
    return Config.from_dict(
        {
            "dream": {"layers": "blocks.3", "octaves": 1, "iterations": 2, "jitter": 4},
            "encode": {"preset": "ultrafast"},
            "zoom": {**base, **zoom},
        }
    )


def frames_of(path):
    from dreamvideo.media.frames import read_frames

    return [f.astype(np.float32) for _, f in read_frames(path)]


def test_zoom_from_a_picture_has_the_asked_length_size_and_rate(tmp_path, cat_png):
    from fractions import Fraction

    from dreamvideo.media.ffmpeg import read_video_metadata
    from dreamvideo.media.frames import probe_video
    from dreamvideo.render.zoom import render_zoom

    out = tmp_path / "z.mp4"
    cfg = zoom_cfg(
        fps=29.97, seconds=0.5, zoom="0: 1.2, 10: 2.0", layers="0: blocks.2, 8: blocks.3:5"
    )
    r = render_zoom(cfg, cat_png, out)
    info = probe_video(out)
    assert r.frames == 15 == len(frames_of(out))
    assert (info.width, info.height, info.fps) == (64, 48, Fraction(30000, 1001))
    assert read_video_metadata(out)["config"]["zoom"]["layers"] == "0: blocks.2, 8: blocks.3:5"
    f = frames_of(out)
    assert np.abs(f[-1] - f[0]).mean() > 5  # it moved


def test_zoom_starts_from_noise_or_colour(tmp_path):
    from dreamvideo.render.zoom import render_zoom

    for start in ("noise", "color"):
        out = tmp_path / f"{start}.mp4"
        render_zoom(zoom_cfg(seconds=0.25, start=start, color="#204060"), None, out)
        assert len(frames_of(out)) == 3


def test_looped_zoom_has_no_jump_from_end_to_start(tmp_path, cat_png):
    from dreamvideo.render.zoom import render_zoom

    out = tmp_path / "loop.mp4"
    render_zoom(zoom_cfg(seconds=2.0, loop=True, loop_frames=6), cat_png, out)
    f = frames_of(out)
    assert len(f) == 24
    steps = [np.abs(b - a).mean() for a, b in zip(f, f[1:], strict=False)]
    seam = np.abs(f[0] - f[-1]).mean()
    assert seam <= max(steps)
    assert seam <= 1.5 * np.median(steps)


def test_interrupted_loop_resumes_to_the_same_animation(tmp_path, cat_png):
    from dreamvideo.errors import UserError
    from dreamvideo.render.zoom import render_zoom

    cfg = zoom_cfg(seconds=1.5, loop=True, loop_frames=5)
    ref = tmp_path / "ref.mp4"
    render_zoom(cfg, cat_png, ref)
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        render_zoom(cfg, cat_png, out, on_frame=interrupt_at(14))
    with pytest.raises(UserError, match="zoom.seconds: 1.5 -> 2.0"):
        render_zoom(zoom_cfg(seconds=2.0, loop=True, loop_frames=5), cat_png, out, resume=True)
    r = render_zoom(cfg, cat_png, out, resume=True)
    # 5 frames of warm-up and 5 of the loop head (written last), then 11 frames written when
    # stopped: 2 checkpoints of 4 kept, so the animation goes on from frame 5 + 5 + 8
    assert r.resumed_from == 18
    got, want = frames_of(out), frames_of(ref)
    assert len(got) == len(want) == 18
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    early = tmp_path / "early.mp4"  # stopped before its first checkpoint: nothing to keep
    with pytest.raises(KeyboardInterrupt):
        render_zoom(cfg, cat_png, early, on_frame=interrupt_at(6))
    assert not early.exists() and not (tmp_path / "early.mp4.parts").exists()


def test_an_in_between_matches_the_view_the_motion_gives_at_its_time():
    """A still picture filmed by the scheduled camera (zoom speeding up, turning, panning):
    the in-betweens made from the views at frames 3 and 6 match the true views at frames 4
    and 5 (each frame's own schedule values), where either neighbour is far off."""
    import cv2

    from dreamvideo.engine.device import to_float, to_tensor
    from dreamvideo.motion.zoom import ZoomPlan, in_between

    def n(v):
        return parse_schedule(v, "k")

    motion = (n("0: 1.5, 6: 4.0"), n(30.0), n(40.0), n(-20.0))
    objective = parse_schedule("blocks.3", "k", numbers=False)
    plan = ZoomPlan(12, 12, 0, motion, n(4), None, objective, 1, (0.4, 0.6), every=3)
    size, cpu = (96, 96), torch.device("cpu")
    world = photo("astronaut", 96).astype(np.float32) / 255

    def view(t):
        return feedback_step(world, plan.moves(0, t, size))

    inner = (slice(8, -8), slice(8, -8))  # the reflected borders differ, as they should
    for t in (4, 5):
        got = in_between(
            to_tensor(view(3), cpu),
            to_tensor(view(6), cpu),
            plan.moves(3, t, size),
            cv2.invertAffineTransform(plan.moves(t, 6, size)),
            (t - 3) / 3,
        )
        error = [np.abs(f - view(t))[inner].mean() * 255 for f in (to_float(got), view(3), view(6))]
        assert error[0] < 3 and error[0] < 0.1 * min(error[1:]), error


def test_an_in_between_keeps_the_finest_detail_of_its_neighbours():
    """Two dreams of one view whose finest detail differs (the ascent between keys moves it)
    and a sub-pixel move: blending and resampling would flatten the detail and make it
    pulse at the keys' rate; the in-between keeps the luma's Laplacian energy of its
    neighbours (weighted by time) within 5%."""
    import cv2

    from dreamvideo.engine.device import to_float, to_tensor
    from dreamvideo.motion.zoom import in_between

    rng = np.random.default_rng(3)
    world = photo("astronaut", 96).astype(np.float32) / 255

    def detail():
        return cv2.GaussianBlur(rng.normal(0, 0.08, world.shape).astype(np.float32), (0, 0), 0.7)

    shared = detail()  # what the two dreams share, and what each made on its own
    dreams = [np.clip(world + shared + 0.6 * detail(), 0, 1) for _ in range(2)]

    def energy(rgb):
        grey = cv2.cvtColor(rgb[8:-8, 8:-8], cv2.COLOR_RGB2GRAY)
        return float(cv2.Laplacian(grey, cv2.CV_32F).var())

    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])  # half a pixel, the softest move
    cpu = torch.device("cpu")
    for a in (1 / 3, 2 / 3):
        got = in_between(*(to_tensor(d, cpu) for d in dreams), half, half, a)
        want = (1 - a) * energy(dreams[0]) + a * energy(dreams[1])
        assert 0.95 < energy(to_float(got)) / want < 1.05, (a, energy(to_float(got)) / want)


def test_an_interpolated_loop_resumes_to_the_same_animation(tmp_path, cat_png):
    from dreamvideo.render.zoom import render_zoom

    cfg = zoom_cfg(seconds=2.0, loop=True, loop_frames=6, interpolate=3)
    ref = tmp_path / "ref.mp4"
    r = render_zoom(cfg, cat_png, ref)
    assert r.frames == 24
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        render_zoom(cfg, cat_png, out, on_frame=interrupt_at(14))
    r = render_zoom(cfg, cat_png, out, resume=True)
    assert 0 < r.resumed_from < 24 + 12
    got, want = frames_of(out), frames_of(ref)
    assert len(got) == len(want) == 24
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    steps = [np.abs(b - a).mean() for a, b in zip(want, want[1:], strict=False)]
    assert min(steps) <= np.abs(want[0] - want[-1]).mean() <= max(steps)


def test_zoom_cli_mistakes_are_one_line(tmp_path):
    from conftest import assert_one_line_error, cli

    for args, message in [
        (["--zoom", "0: 1.1, 5: x"], "zoom.zoom: unknown name 'x' at position 12"),
        (["--layers", "0: blocks.8, 5: blocks.99"], "unknown layer 'blocks.99'"),
        (["--start", "photo"], "'photo' is not one of 'noise', 'color'"),
        (["--loop", "--seconds", "0.01"], "zoom.loop needs at least 2 frames"),
        (["--fps", "nan"], "zoom.fps"),
        (["--interpolate", "0"], "zoom.interpolate"),
        (["--loop", "--interpolate", "4", "--seconds", "0.1"], "needs at least 8 frames"),
    ]:
        out = tmp_path / "z.mp4"
        assert_one_line_error(
            cli("zoom", "-o", out, "--width", "32", "--height", "32", *args), message
        )
        assert not out.exists() and not (tmp_path / "z.mp4.parts").exists()


def test_a_colour_start_is_that_colour(tmp_path):
    """Nothing dreamed: the first frame of a zoom that starts from #3070c0 is #3070c0."""
    from dreamvideo.render.zoom import render_zoom

    out = tmp_path / "flat.mkv"
    cfg = zoom_cfg(seconds=0.25, start="color", color="#3070c0")
    cfg = cfg.override("dream", iterations=0).override("zoom", iterations=0)
    render_zoom(cfg.override("encode", codec="ffv1"), None, out)
    first = frames_of(out)[0]
    assert np.abs(first - np.float32([0x30, 0x70, 0xC0])).max() <= 1
