"""Absurd numbers and odd files, tried as a careless user would: each ends fast, in one line
or in a sensible result, never in a hang or a traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error, cli, pan_frames, write_clip
from PIL import Image

from dreamvideo.config import check_scheduled
from dreamvideo.media.metrics import measure_clip
from dreamvideo.motion.schedule import PROGRESS_FRAMES, parse_schedule
from dreamvideo.presets import load_preset
from dreamvideo.render.zoom import plan_zoom

TINY = ["--octaves", "1", "--iterations", "1", "--set", "dream.layers=blocks.3"]


@pytest.fixture()
def clip(tmp_path):
    return Path(write_clip(tmp_path / "clip.mp4", pan_frames(6, (48, 32))))


def test_a_start_or_end_beyond_any_clip(tmp_path, clip):
    out = tmp_path / "o.mp4"
    assert_one_line_error(
        cli("video", clip, "-o", out, "--start", "1e308"), "video.start 1e+308 s is past the end"
    )
    assert_one_line_error(cli("video", clip, "-o", out, "--start", "5"), "(0.20 s long)")
    r = cli("video", clip, "-o", out, *TINY, "--end", "1e308")  # the end of the clip
    assert r.code == 0 and "6 frames" in r.out, r.output


def test_frame_rates_a_file_cannot_have_are_refused_before_any_work(tmp_path):
    t0 = time.monotonic()
    assert_one_line_error(
        cli("zoom", "-o", tmp_path / "z.mp4", "--fps", "1e-9"), "zoom.fps: must be >= 0.1"
    )
    assert_one_line_error(
        cli("audio", Path(__file__), "-o", tmp_path / "e.png", "--fps", "1e-9"),
        "--fps 1e-09: must be 0.1 .. 240 frames per second",
    )
    assert_one_line_error(
        cli("audio", Path(__file__), "-o", tmp_path / "e.png", "--fps", "nan"), "--fps nan"
    )
    assert time.monotonic() - t0 < 60  # refused up front (generous: a cold import)
    assert not list(tmp_path.iterdir())


def test_more_gallery_columns_than_layers_draw_one_row(tmp_path, cat_png):
    out = tmp_path / "g.png"
    r = cli(
        "gallery", cat_png, "-o", out, "--layers", "blocks.1 blocks.2", "--size", 32,
        "--columns", 10**30, "--octaves", 1, "--iterations", 1,
    )  # fmt: skip
    assert r.code == 0, r.output
    w, h = Image.open(out).size
    assert w < 3 * 32 + 20 and h < 2 * 32 + 40  # two tiles side by side, one row
    assert_one_line_error(cli("gallery", cat_png, "-o", out, "--size", 10**30), "--size")


def test_a_batch_job_whose_kind_is_a_list_is_one_line(tmp_path, cat_png):
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(f"- {{kind: [image], input: {Path(cat_png).name}, output: o.png}}\n")
    r = cli("batch", jobs)
    assert r.code == 1 and "Traceback" not in r.output
    assert "kind must be one of image, video, zoom; got ['image']" in r.err


def test_a_key_given_twice_in_a_preset_names_it_and_both_lines(tmp_path, cat_png):
    preset = tmp_path / "twice.yaml"
    preset.write_text(
        "dream:\n  step: 2\n  layers: blocks.4\nvideo:\n  blend: 1\ndream:\n  step: 9\n"
    )
    assert_one_line_error(
        cli("image", cat_png, "-o", tmp_path / "o.png", "--preset", preset),
        "key dream is given twice, on lines 1 and 6",
    )
    preset.write_text("dream:\n  step: 2\n  step: 3\n")
    assert_one_line_error(cli("presets", preset), "key step is given twice, on lines 2 and 3")
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text("- kind: image\n  kind: zoom\n  output: o.png\n")
    assert_one_line_error(cli("batch", jobs), "key kind is given twice, on lines 1 and 2")


def test_a_schedule_check_over_many_frames_says_how_far_it_has_come():
    schedule = parse_schedule("0: (1.1 + 0.05*sin(t/9))", "zoom.zoom")
    seen: list[int] = []
    schedule.check_frames(
        range(3 * PROGRESS_FRAMES), 24.0, lambda t: None, check_scheduled, seen.append
    )
    assert seen == [0, PROGRESS_FRAMES, 2 * PROGRESS_FRAMES]
    said: list[str] = []  # a zoom of 1.6 hours at 24 fps: a line at once
    cfg = load_preset("zoom").override("zoom", seconds=6000.0, zoom="0: (1.1 + 0.05*sin(t/9))")
    plan_zoom(cfg, on_stage=said.append)
    assert said and said[0] == "checking the schedules' values: frame 1 of 144,000"


def test_metrics_of_two_unrelated_clips_say_so(tmp_path):
    a = write_clip(tmp_path / "a.mp4", pan_frames(8, (96, 64), name="astronaut"))
    b = write_clip(tmp_path / "b.mp4", pan_frames(8, (96, 64), name="coffee"))
    longer = write_clip(tmp_path / "long.mp4", pan_frames(12, (96, 64), name="astronaut"))
    assert measure_clip(a, b).unrelated and not measure_clip(a, a).unrelated
    r = cli("metrics", a, b)
    assert r.code == 0 and "does not look like a dream of" in r.err, r.output
    r = cli("metrics", longer, a)
    assert "has 12 frames from frame 0" in r.err and "does not look" not in r.err, r.output
