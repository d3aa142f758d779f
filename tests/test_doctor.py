"""``dreamvideo doctor``: what this machine will do, as a table and as JSON."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import cli

from dreamvideo.render.doctor import TIMED, per_frame


def test_doctor_says_what_this_machine_will_do_and_times_a_step():
    r = cli("doctor", "--json")
    assert r.code == 0, r.output
    found = json.loads(r.out)
    assert found["torch"] == torch.__version__
    assert found["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert found["device_why"]
    assert "libx264" in found["encoders"]
    assert found["extras"]["ray"] and found["extras"]["ui"]  # the test extra installs them
    assert found["weights"]["efficientnet_lite0"].startswith("bundled: ")
    steps = found["step_ms"]
    assert set(steps) == {f"{w}x{h}" for h, w in TIMED}
    assert 0 < steps["640x360"] < steps["1280x720"]  # four times the pixels cost more
    # video-hd touches up at half the size: a fraction of video's time per frame
    assert 0 < found["video-hd_720p_seconds"] < found["video_720p_seconds"]


def test_doctor_prints_a_table_without_timing():
    r = cli("doctor", "--no-timing")
    assert r.code == 0, r.output
    names = [line.split("  ")[0] for line in r.out.splitlines()]
    for row in ("dreamvideo", "Python", "torch", "device", "ffmpeg", "extras"):
        assert row in names, r.out
    assert "ascent step" not in r.out


def test_the_estimate_adds_the_touch_ups_steps_of_each_frame():
    """``video`` at 720p: 3 iterations of one octave at full size on every other frame;
    with a step of 0.1 s at 640x360 and 0.4 s at 1280x720 that is 1.5 x 0.4 s."""
    times = {TIMED[0]: 0.1, TIMED[1]: 0.4}
    assert per_frame("video", times) == pytest.approx(1.5 * 0.4)
