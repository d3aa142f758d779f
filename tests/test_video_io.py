import gc
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import ffmpeg_children, pan_frames, write_clip

from dreamvideo.errors import UserError
from dreamvideo.media.codecs import codec_args
from dreamvideo.media.ffmpeg import (
    EncodeError,
    Sound,
    VideoWriter,
    ffmpeg_exe,
    join_segments,
    read_video_metadata,
)
from dreamvideo.media.frames import probe_video, read_frames
from dreamvideo.media.probe import exact_fps


def test_exact_fps_keeps_ntsc_rates():
    assert exact_fps(29.97002997002997) == Fraction(30000, 1001)
    assert exact_fps(23.976023976023978) == Fraction(24000, 1001)
    assert exact_fps(25.0) == 25


def test_odd_size_and_fractional_rate_survive_a_round_trip(tmp_path):
    frames = pan_frames(10, (65, 47))
    path = write_clip(tmp_path / "odd.mp4", frames, fps=Fraction(30000, 1001))
    info = probe_video(path)
    assert (info.width, info.height) == (65, 47)
    assert info.fps == Fraction(30000, 1001)
    decoded = [f for _, f in read_frames(path)]
    assert len(decoded) == 10 and decoded[0].shape == (47, 65, 3)
    assert np.abs(decoded[4].astype(int) - frames[4]).mean() < 4  # RGB order kept


def test_read_frames_range_and_resize(tmp_path):
    path = write_clip(tmp_path / "c.mp4", pan_frames(12, (64, 48)))
    got = list(read_frames(path, first=3, last=7, size=(32, 24)))
    assert [i for i, _ in got] == [3, 4, 5, 6]
    assert got[0][1].shape == (24, 32, 3)
    assert len(list(read_frames(path, first=10, last=None))) == 2  # reads until the clip ends


def test_rotation_metadata_is_honoured(tmp_path):
    frames = pan_frames(3, (64, 48))
    plain = write_clip(tmp_path / "plain.mp4", frames)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-display_rotation",
            "90",
            "-i",
            plain,
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
    )
    info = probe_video(rotated)
    assert (info.width, info.height) == (48, 64)
    upright = next(read_frames(rotated))[1]
    stored = next(read_frames(plain))[1]
    # a display rotation of +90 degrees turns the picture counter-clockwise
    assert np.abs(upright.astype(int) - np.rot90(stored, 1)).mean() < 2


def test_audio_is_found_and_kept_by_join(tmp_path):
    src = write_clip(tmp_path / "a.mp4", pan_frames(15, (64, 48)), audio=True)
    assert probe_video(src).has_audio
    segs = []
    fps = Fraction(30000, 1001)
    for k in range(3):
        seg = tmp_path / f"s{k}.mp4"
        with VideoWriter(seg, (64, 48), fps, codec_args(64, 48, 20, False, "ultrafast")) as w:
            for _ in range(5):
                w.write(np.full((48, 64, 3), 40 * k, np.uint8))
        segs.append(seg)
    out = tmp_path / "joined.mp4"
    join_segments(segs, out, 15, Sound(src), 15 / float(fps), {"config": {"a": "b=c;#"}})
    info = probe_video(out)
    assert info.has_audio and info.fps == fps
    means = [f.mean() for _, f in read_frames(out)]
    assert len(means) == 15
    assert np.allclose(means[::5], [0, 40, 80], atol=2)
    assert read_video_metadata(out) == {"config": {"a": "b=c;#"}}
    assert not list(tmp_path.glob(".joined*"))  # no temporary files left


def test_sources_without_audio_join_too(tmp_path):
    src = write_clip(tmp_path / "silent.mp4", pan_frames(5, (32, 32)))
    assert not probe_video(src).has_audio
    out = tmp_path / "o.mkv"
    join_segments([src], out, 5, Sound(src))
    assert not probe_video(out).has_audio and len(list(read_frames(out))) == 5


def test_not_a_video_and_truncated_files_are_clear_errors(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("definitely not a video")
    with pytest.raises(UserError, match="notes.mp4"):
        probe_video(text)
    good = write_clip(tmp_path / "good.mp4", pan_frames(10, (64, 48)))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(Path(good).read_bytes()[:600])
    with pytest.raises(UserError, match="cut.mp4"):
        probe_video(cut)
    with pytest.raises(UserError, match="does not exist"):
        probe_video(tmp_path / "missing.mp4")


def test_no_ffmpeg_left_behind_after_close_error_abort_or_delete(tmp_path):
    fps = Fraction(25)
    codec = codec_args(32, 32, 20, False, "ultrafast")
    frame = np.zeros((32, 32, 3), np.uint8)
    with VideoWriter(tmp_path / "ok.mp4", (32, 32), fps, codec) as w:
        w.write(frame)
    assert ffmpeg_children() == []
    with pytest.raises(RuntimeError), VideoWriter(tmp_path / "e.mp4", (32, 32), fps, codec) as w:
        w.write(frame)
        raise RuntimeError("boom")
    assert ffmpeg_children() == []
    w = VideoWriter(tmp_path / "a.mp4", (32, 32), fps, codec)
    w.abort()
    assert ffmpeg_children() == []
    with (
        pytest.raises(ValueError, match="does not match"),
        VideoWriter(tmp_path / "s.mp4", (32, 32), fps, codec) as w,
    ):
        w.write(np.zeros((31, 32, 3), np.uint8))
    gc.collect()
    assert ffmpeg_children() == []


def test_encoder_failure_carries_ffmpeg_stderr(tmp_path):
    bad = ["-c:v", "libx264", "-crf", "18", "-pix_fmt", "no_such_format"]
    w = VideoWriter(tmp_path / "bad.mp4", (32, 32), Fraction(25), bad)
    with pytest.raises(EncodeError, match="no_such_format|pixel format"):
        for _ in range(50):
            w.write(np.zeros((32, 32, 3), np.uint8))
        w.close()
    assert ffmpeg_children() == []
