"""Dreamed upscaling (dream.upscale, --upscale): pictures, clips and zooms K times the size,
with the octaves of the size asked for and finer ones up to the output's."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_one_line_error, cli, interrupted_then_resumed, pan_frames, write_clip

from dreamvideo.config import Config
from dreamvideo.engine.ascent import AscentParams, octave_sizes, steps_for

FAST = {
    "dream": {"layers": "blocks.3", "octaves": 2, "iterations": 2, "jitter": 2},
    "video": {"next_octaves": 1, "next_iterations": 1, "checkpoint_every": 4},
    "encode": {"preset": "ultrafast", "lossless": True},
}


def fast(upscale: float = 1.0, **sections) -> Config:
    cfg = Config.from_dict({k: {**FAST.get(k, {}), **sections.get(k, {})} for k in FAST | sections})
    return cfg.override("dream", upscale=upscale)


def sharpness(rgb: np.ndarray) -> float:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def test_an_upscaled_dream_keeps_the_octaves_of_the_size_asked_for():
    params = AscentParams(4, 1.4, 10, 2.0, 8, "laplacian", 0)
    asked = octave_sizes(256, 256, params.octaves, 1.4)
    for k, extra in ((2.0, 2), (1.5, 1), (4.0, 4)):
        up = AscentParams(4, 1.4, 10, 2.0, 8, "laplacian", 0, upscale=k)
        assert up.octave_count == 4 + extra
        sizes = octave_sizes(round(256 * k), round(256 * k), up.octave_count, 1.4)
        assert sizes[-1] == (round(256 * k),) * 2  # the finest runs at the output's size
        # below the added octaves, the same sizes as the dream at the size asked for
        same = sizes[: len(asked)]
        assert all(0.8 < a[0] / b[0] < 1.25 for a, b in zip(same, asked, strict=True)), sizes
        assert steps_for(round(256 * k), round(256 * k), up) == len(sizes) * 10


def test_an_upscaled_picture_is_sharper_than_its_dream_scaled_up(tmp_path, cat_png):
    from dreamvideo.media.images import read_image
    from dreamvideo.render.image import render_image

    small = render_image(fast(), cat_png, tmp_path / "1.png")
    big = render_image(fast(2.0), cat_png, tmp_path / "2.png")
    assert big.size == (192, round(small.size[1] * 2))
    assert read_image(tmp_path / "2.png").shape[:2] == (big.size[1], big.size[0])
    scaled = cv2.resize(small.image, big.size, interpolation=cv2.INTER_LANCZOS4)
    assert sharpness(big.image) > 1.2 * sharpness(scaled)
    # the same picture, not another dream: its coarse layout is the small dream's
    blur = (cv2.GaussianBlur(x.astype(np.float32), (0, 0), 4) for x in (big.image, scaled))
    assert np.abs(next(blur) - next(blur)).mean() < 12


@pytest.fixture()
def clip(tmp_path):
    return Path(write_clip(tmp_path / "clip.mp4", pan_frames(10, (64, 48))))


def test_an_upscaled_clip_follows_the_motion_at_its_own_size(tmp_path, clip, monkeypatch):
    from dreamvideo.media.frames import probe_video, read_frames
    from dreamvideo.media.metrics import measure_clip
    from dreamvideo.motion import flow
    from dreamvideo.render.clip import render_video

    seen = []
    real = flow.track

    def track(prev, cur, flow_fn, occlusion, scale=1.0):
        seen.append((cur.shape[1], scale))
        return real(prev, cur, flow_fn, occlusion, scale)

    monkeypatch.setattr("dreamvideo.render.clip.track", track)
    one, two = tmp_path / "one.mkv", tmp_path / "two.mkv"
    render_video(fast(), clip, one)
    render_video(fast(2.0), clip, two)
    info = probe_video(two)
    assert (info.width, info.height, info.frame_count) == (128, 96, 10)
    assert {(w, s) for w, s in seen} == {(64, 1.0), (128, 1.0)}  # at the frames' own size
    # as steady as the render at the size asked for
    assert measure_clip(clip, two).warp_ratio <= 1.2 * measure_clip(clip, one).warp_ratio
    sharp = [sharpness(f) for _, f in read_frames(two)]
    scaled = [sharpness(cv2.resize(f, (128, 96), interpolation=cv2.INTER_LANCZOS4))
              for _, f in read_frames(one)]  # fmt: skip
    assert np.mean(sharp) > np.mean(scaled)


def test_an_upscaled_clip_resumes_to_the_same_file(tmp_path, clip):
    from dreamvideo.media.frames import read_frames
    from dreamvideo.render.clip import render_video

    ref, out = tmp_path / "ref.mkv", tmp_path / "out.mkv"
    cfg = fast(2.0)
    render_video(cfg, clip, ref)
    r = interrupted_then_resumed(lambda **kw: render_video(cfg, clip, out, **kw), 6)
    assert r.resumed_from == 4
    want, got = ([f for _, f in read_frames(p)] for p in (ref, out))
    assert len(got) == len(want) == 10
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


def test_an_upscaled_zoom_is_the_same_animation_at_more_pixels(tmp_path, cat_png):
    from dreamvideo.media.frames import read_frames
    from dreamvideo.render.zoom import plan_zoom, render_zoom

    zoom = {"seconds": 0.5, "fps": 12, "width": 48, "height": 32, "iterations": 1,
            "zoom": 1.3, "pan_x": 24.0}  # fmt: skip
    one, two = fast(zoom=zoom), fast(2.0, zoom=zoom)
    # pans are in pixels of the size asked for: twice as many at twice the size
    assert plan_zoom(two).motion_at(3).pan_x == pytest.approx(2 * plan_zoom(one).motion_at(3).pan_x)
    render_zoom(one, cat_png, tmp_path / "one.mkv")
    r = render_zoom(two, cat_png, tmp_path / "two.mkv")
    assert r.size == (96, 64) and r.frames == 6
    small = [f for _, f in read_frames(tmp_path / "one.mkv")]
    big = [f for _, f in read_frames(tmp_path / "two.mkv")]
    # the same motion: the last frame's coarse picture is the small one's, scaled
    coarse = (cv2.resize(x, (24, 16), interpolation=cv2.INTER_AREA) for x in (big[-1], small[-1]))
    assert np.abs(next(coarse).astype(np.float32) - next(coarse)).mean() < 20


def test_upscale_mistakes_are_one_line(tmp_path, cat_png):
    out = tmp_path / "o.png"
    assert_one_line_error(cli("image", cat_png, "-o", out, "--upscale", "5"), "dream.upscale")
    assert_one_line_error(
        cli("image", cat_png, "-o", out, "--upscale", "4", "--width", "16384"), "megapixels"
    )
    assert not out.exists()
