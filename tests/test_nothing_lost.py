"""Careless or hostile input never destroys a file, never leaves a blocking mess, never prints
a traceback: one line, and what was rendered is kept."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    assert_one_line_error,
    cli,
    ffmpeg_children,
    interrupt_at,
    pan_frames,
    write_clip,
)
from PIL import Image

from dreamvideo.config import Config
from dreamvideo.errors import UserError
from dreamvideo.media.checkpoint import parts_dir
from dreamvideo.media.ffmpeg import (
    EncodeError,
    VideoWriter,
    codec_args,
    describe,
    join_segments,
    run_ffmpeg,
)
from dreamvideo.media.frames import read_frames
from dreamvideo.media.images import read_image
from dreamvideo.render.clip import render_video

FAST = {
    "dream": {"layers": "blocks.3", "octaves": 1, "iterations": 1, "jitter": 2},
    "video": {"next_octaves": 1, "next_iterations": 1, "checkpoint_every": 3},
    "encode": {"preset": "ultrafast"},
}
TINY = ["--octaves", "1", "--iterations", "1"]


def fast(**video):
    return Config.from_dict({**FAST, "video": {**FAST["video"], **video}})


@pytest.fixture()
def clip(tmp_path):
    return Path(write_clip(tmp_path / "clip.mp4", pan_frames(9, (48, 32))))


def frames_of(path):
    return [f for _, f in read_frames(path)]


# ------------------------------------------------------------------ inputs are never outputs


def test_output_equal_to_the_input_is_refused_in_any_spelling(tmp_path, cat_png, clip):
    cat = Path(cat_png)
    before = cat.read_bytes()
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.png"
    link.symlink_to(cat)
    hard = tmp_path / "hard.png"
    os.link(cat, hard)
    for spelling in (cat, tmp_path / "sub" / ".." / "cat.png", link, hard):
        assert_one_line_error(cli("image", cat, "-o", spelling, "-y", *TINY), "is the input file")
    assert cat.read_bytes() == before
    assert_one_line_error(
        cli("video", clip, "-o", tmp_path / "." / "clip.mp4", "-y"), "is the input file"
    )
    assert_one_line_error(
        cli(
            "zoom",
            cat,
            "-o",
            tmp_path / "z.mp4",
            "--preview",
            cat_png,
            "--width",
            32,
            "--height",
            32,
        ),
        "preview",
    )
    photo = tmp_path / "photo.png"  # a picture that is not an earlier preview is kept
    photo.write_bytes(before)
    assert_one_line_error(
        cli("video", clip, "-o", tmp_path / "o.mp4", "--preview", photo),
        f"preview {photo} already exists",
    )
    assert cat.read_bytes() == before == photo.read_bytes()
    assert not (tmp_path / "z.mp4.parts").exists() and not (tmp_path / "o.mp4").exists()


def test_existing_outputs_are_kept_unless_overwrite_is_given(tmp_path, cat_png):
    out = tmp_path / "d.png"
    out.write_bytes(b"precious")
    assert_one_line_error(cli("image", cat_png, "-o", out, *TINY), "add -y/--overwrite")
    assert out.read_bytes() == b"precious"
    assert cli("image", cat_png, "-o", out, *TINY, "--overwrite").code == 0
    assert Image.open(out).size == (96, 64)


# ------------------------------------------------------------------ planted links


def test_links_planted_beside_the_output_are_never_followed(tmp_path, cat_png, clip):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "o.mp4"
    # the temporary names older versions used, and the parts folder
    for name in (".o.part.mp4", ".o.segments.txt", ".d.png.part", ".d.part.png"):
        (tmp_path / name).symlink_to(victim)
    render_video(fast(), clip, out)
    assert cli("image", cat_png, "-o", tmp_path / "d.png", *TINY).code == 0
    assert victim.read_text() == "keep me" and len(frames_of(out)) == 9
    parts_dir(tmp_path / "p.mp4").symlink_to(tmp_path)
    with pytest.raises(UserError, match="is not a folder dreamvideo made"):
        render_video(fast(), clip, tmp_path / "p.mp4")
    assert victim.read_text() == "keep me"


# ------------------------------------------------------------------ damaged parts


def _interrupted(clip, out, at=8):
    with pytest.raises(KeyboardInterrupt):
        render_video(fast(), clip, out, on_frame=interrupt_at(at))
    return parts_dir(out)


@pytest.mark.parametrize(
    "damage, resumed_from",
    [
        ("truncate the last segment", 3),
        ("truncate the first segment", 0),
        ("empty the newest state", 3),
    ],
)
def test_damaged_parts_are_found_and_rendered_again(tmp_path, clip, damage, resumed_from):
    ref = tmp_path / "ref.mp4"
    render_video(fast(), clip, ref)
    out = tmp_path / "out.mp4"
    parts = _interrupted(clip, out)
    assert sorted(p.name for p in parts.glob("seg_*")) == ["seg_00000.mp4", "seg_00001.mp4"]
    if damage == "truncate the last segment":
        seg = parts / "seg_00001.mp4"
        seg.write_bytes(seg.read_bytes()[:300])
    elif damage == "truncate the first segment":
        seg = parts / "seg_00000.mp4"
        seg.write_bytes(seg.read_bytes()[:-10])
    else:
        (parts / "state_00002.npz").write_bytes(b"")
    r = render_video(fast(), clip, out, resume=True)
    assert r.resumed_from == resumed_from and r.frames == 9
    assert any("rendered again" in note for note in r.notes)
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(out), frames_of(ref), strict=True))


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("run.json", b"{not json", "run.json (the render's settings) is damaged"),
        ("manifest.json", b"", "manifest.json (the list of finished segments) is damaged"),
    ],
)
def test_damaged_bookkeeping_is_one_line(tmp_path, clip, name, content, message):
    out = tmp_path / "out.mp4"
    parts = _interrupted(clip, out)
    (parts / name).write_bytes(content)
    with pytest.raises(UserError, match=re.escape(message)) as e:
        render_video(fast(), clip, out, resume=True)
    assert "\n" not in str(e.value)
    assert (parts / "seg_00000.mp4").exists()  # nothing is thrown away without --restart


def test_a_join_that_loses_frames_fails_loudly_and_keeps_the_parts(tmp_path, clip):
    out = tmp_path / "joined.mp4"
    with pytest.raises(EncodeError, match="holds 9 frames, not 10"):
        join_segments([clip], out, 10)
    assert not out.exists() and clip.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".joined")]


# ------------------------------------------------------------------ leftovers and locks


def test_a_failure_before_the_first_checkpoint_leaves_nothing_behind(tmp_path, clip):
    out = tmp_path / "o.mp4"
    with pytest.raises(KeyboardInterrupt):
        render_video(fast(), clip, out, on_frame=interrupt_at(1))
    assert not parts_dir(out).exists()
    r = cli(
        "video", clip, "-o", out, *TINY, "--set", "dream.layers=blocks.3", "--checkpoint-every", 3
    )
    assert r.code == 0, r.output


def test_a_resume_of_a_finished_render_keeps_the_file_and_says_so(tmp_path, clip):
    out = tmp_path / "o.mp4"
    render_video(fast(), clip, out)
    before = (out.stat().st_mtime_ns, out.read_bytes())
    again = render_video(fast(), clip, out, resume=True)
    assert again.frames == again.resumed_from == 9
    assert again.notes and "already complete" in again.notes[0]
    assert (out.stat().st_mtime_ns, out.read_bytes()) == before
    # other settings are not this file's render: nothing to resume, and the file stays
    with pytest.raises(UserError, match="nothing to resume"):
        render_video(fast(blend=0.5), clip, out, resume=True)
    assert out.read_bytes() == before[1]


def test_a_second_render_of_the_same_output_is_locked_out(tmp_path, clip):
    out = tmp_path / "o.mp4"
    seen = []

    def second_render(report):
        if report.done == 4 and not seen:
            with pytest.raises(UserError) as e:
                render_video(fast(), clip, out, resume=True)
            seen.append(str(e.value))

    render_video(fast(), clip, out, on_frame=second_render)
    assert seen and f"being rendered by another dreamvideo run (pid {os.getpid()})" in seen[0]
    assert len(frames_of(out)) == 9


# ------------------------------------------------------------------ ffmpeg is always stopped


def test_every_ffmpeg_call_is_bounded_in_time(tmp_path):
    with pytest.raises(EncodeError, match="timed out after 1 s"):
        run_ffmpeg(
            ["-f", "lavfi", "-i", "testsrc=rate=1000", "-f", "null", "-"],
            "an endless job",
            timeout=1,
        )
    fifo = tmp_path / "stalled.mp4"
    os.mkfifo(fifo)  # nobody ever writes: ffmpeg's probe would wait forever
    with pytest.raises(UserError, match="timed out after 1 s"):
        describe(fifo, timeout=1)
    w = VideoWriter(
        tmp_path / "slow.mp4",
        (64, 64),
        25,
        codec_args(64, 64, 18, False, "veryslow"),
        close_timeout=0.001,
    )
    for _ in range(30):
        w.write(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(EncodeError, match="did not finish within"):
        w.close()
    assert ffmpeg_children() == []


# ------------------------------------------------------------------ pictures


def test_sixteen_bit_greyscale_pictures_keep_their_tones(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 32).reshape(32, 64).astype(np.uint16)
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    rgb = read_image(path)
    assert rgb.shape == (32, 64, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb[..., 0].astype(int) - np.round(ramp / 257)).max() <= 1
    assert 120 < rgb.mean() < 135  # mid-grey on average, not white


def test_pictures_over_the_pixel_limit_are_one_line(tmp_path):
    huge = tmp_path / "huge.png"
    Image.new("1", (20000, 10000)).save(huge)  # 200 megapixels, a few kB on disk
    assert_one_line_error(cli("image", huge, "-o", tmp_path / "o.png"), "too large a picture")


# ------------------------------------------------------------------ no tracebacks


def test_unwritable_places_are_one_line(tmp_path, cat_png, clip):
    # /proc takes no new files, for root too (a chmod would not stop root)
    assert_one_line_error(
        cli("image", cat_png, "-o", "/proc/dream.png"), "cannot write into folder /proc"
    )
    assert_one_line_error(
        cli("video", clip, "-o", tmp_path / "o.mp4", "--preview", "/proc/now.png"),
        "cannot write into folder /proc",
    )
    (tmp_path / "folder.png").mkdir()
    assert_one_line_error(cli("image", cat_png, "-o", tmp_path / "folder.png"), "is a folder")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seed", str(2**64 + 1)], "dream.seed"),
        (["--step", "nan"], "dream.step: must be a finite number"),
        (["--layers", " + ".join(["blocks.3"] * 1000)], "at most"),
    ],
)
def test_hostile_numbers_and_objectives_are_one_line(tmp_path, cat_png, args, message):
    assert_one_line_error(cli("image", cat_png, "-o", tmp_path / "o.png", *args), message)


def test_a_real_process_prints_one_line_and_no_decoder_noise(tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a clip")
    r = subprocess.run(
        [sys.executable, "-m", "dreamvideo", "video", str(notes), "-o", str(tmp_path / "o.mp4")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"[0:00] reading {notes}",
        f"error: {notes} is not a video OpenCV can open (try converting it to MP4)",
    ]
    assert json.dumps(r.stderr).count("moov") == 0
