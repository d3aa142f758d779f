"""The newest paths (frame folders, lanes and chunks) under careless and hostile use: nothing
is deleted that the render did not write, joined files hold exactly their frames, resumes are
identical and trust nothing they did not check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, cli, interrupt_at, pan_frames, photo, write_clip
from PIL import Image

from dreamvideo.config import Config
from dreamvideo.errors import UserError
from dreamvideo.media.checkpoint import parts_dir
from dreamvideo.media.ffmpeg import ffmpeg_exe, first_frame_info, read_audio
from dreamvideo.media.frames import probe_video, read_frames
from dreamvideo.media.probe import light_level, mastering_display
from dreamvideo.media.sequence import read_frame
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for
from dreamvideo.render.clip import render_video
from dreamvideo.scale.chunked import render_clip

FAST = {
    "dream": {"layers": "blocks.3", "octaves": 1, "iterations": 2, "jitter": 2, "device": "cpu"},
    "video": {"next_octaves": 1, "next_iterations": 1, "checkpoint_every": 3},
    "encode": {"preset": "ultrafast"},
}
LANES = {"chunk_seconds": 0.2, "chunk_overlap": 2}  # 24 frames at 30 fps: 4 chunks of 6


def fast(**video) -> Config:
    return Config.from_dict({**FAST, "video": {**FAST["video"], **video}})


@pytest.fixture(scope="module")
def dreamer():
    return dreamer_for(fast().dream)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clip")
    return Path(write_clip(folder / "pan.mp4", pan_frames(24, (64, 48)), audio=True))


def frames_of(path) -> np.ndarray:
    return np.stack([f for _, f in read_frames(path)]).astype(np.int16)


def stop_after_chunks(n: int):
    """An ``on_frame`` that presses Ctrl-C once ``n`` chunks have landed (a chunk's landing
    reports its last frame; progress within a chunk reports its first)."""
    landed = []

    def on_frame(report) -> None:
        if (report.index + 1) % 6 == 0 and not report.fresh:
            landed.append(report.index)
            if len(landed) == n:
                raise KeyboardInterrupt

    return on_frame


def pictures_decoded(video: Path, tmp_path: Path) -> int:
    """How many pictures ffmpeg makes of ``video`` going by its timestamps, as an editor's
    frame export does (a frame with a broken duration comes out twice)."""
    folder = tmp_path / f"decoded-{video.name}"
    folder.mkdir()
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(video), str(folder / "%04d.png")],
        check=True,
        timeout=120,
    )
    return len(list(folder.iterdir()))


# ------------------------------------------------------------------ 1. nothing deleted


def test_y_replaces_its_own_frames_and_leaves_strays_of_the_pattern(tmp_path, clip, dreamer):
    out = tmp_path / "out" / "dream_%d.png"
    out.parent.mkdir()
    stray = out.parent / "dream_12345.png"
    stray.write_bytes(b"someone else's frame")
    cfg = fast(max_frames=6)
    render_video(cfg, clip, out, dreamer=dreamer, overwrite=True)  # -y: the stray is a match
    r = render_video(fast(max_frames=4), clip, out, dreamer=dreamer, overwrite=True)
    assert stray.read_bytes() == b"someone else's frame"
    # the earlier render's frames 4 and 5 were its own (listed with their checksums): they go
    names = {p.name for p in out.parent.iterdir()}
    assert names == {f"dream_{k}.png" for k in range(4)} | {"dream_12345.png",
                                                            "dream_settings.json"}  # fmt: skip
    assert any("dream_12345.png" in n and "left as they are" in n for n in r.notes), r.notes


def test_y_leaves_an_earlier_frame_that_was_changed_since(tmp_path, clip, dreamer):
    out = tmp_path / "d_%02d.png"
    render_video(fast(max_frames=5), clip, out, dreamer=dreamer)
    edited = tmp_path / "d_04.png"
    edited.write_bytes(edited.read_bytes() + b"retouched")  # no longer what was written
    render_video(fast(max_frames=3), clip, out, dreamer=dreamer, overwrite=True)
    assert edited.read_bytes().endswith(b"retouched")
    assert not (tmp_path / "d_03.png").exists()  # unchanged: the earlier render's own


def _victims(tmp_path: Path) -> dict[str, Path]:
    """Files a hostile manifest may name: beside the output, outside its folder, by an
    absolute path, behind a link."""
    outside = tmp_path / "outside.txt"
    beside = tmp_path / "out" / "notes.txt"
    other = tmp_path / "out" / "holiday_0001.png"
    for f in (outside, beside, other):
        f.parent.mkdir(exist_ok=True)
        f.write_text("keep me")
    link = tmp_path / "out" / "d_0009.png"
    link.symlink_to(outside)
    return {"outside": outside, "beside": beside, "other": other, "link": link}


def _names(victims: dict[str, Path]) -> list[str]:
    return ["notes.txt", "holiday_0001.png", "../outside.txt", str(victims["outside"]),
            "d_0009.png", "", ".", "..", "/"]  # fmt: skip


def _intact(victims: dict[str, Path]) -> None:
    for f in ("outside", "beside", "other"):
        assert victims[f].read_text() == "keep me", f
    assert victims["link"].is_symlink()


def test_a_frame_folders_edited_log_never_names_what_is_deleted(tmp_path, clip, dreamer):
    victims = _victims(tmp_path)
    out = tmp_path / "out" / "d_%04d.png"
    with pytest.raises(KeyboardInterrupt):
        render_video(fast(max_frames=9), clip, out, dreamer=dreamer, overwrite=True,
                     on_frame=interrupt_at(5))  # fmt: skip
    log = parts_dir(out) / "written.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    forged = [{**entries[0], "file": name} for name in _names(victims)]
    forged += [{"file": "d_0009.png", "bytes": 7, "sha256": "0" * 64}]
    with log.open("a") as f:  # every name it could hold, in every field a line has
        f.write("".join(json.dumps(e) + "\n" for e in forged) + "not json\n")
    (parts_dir(out) / "manifest.json").write_text('{"done": "../../outside.txt"}')
    r = cli("video", clip, "-o", out, "--restart", "--octaves", "1", "--iterations", "1",
            "--set", "video.max_frames=3")  # fmt: skip
    assert r.code == 0, r.output
    _intact(victims)
    assert sorted(p.name for p in out.parent.glob("d_*.png")) == [
        "d_0000.png",
        "d_0001.png",
        "d_0002.png",
        "d_0009.png",
    ]


@pytest.mark.parametrize("lanes", [1, 2])
def test_a_videos_edited_manifest_never_names_what_is_deleted(tmp_path, clip, dreamer, lanes):
    """The single-process render's segments and the chunked render's parts, each listed
    file named as anything a hostile edit could put there: resume and restart redo what is
    damaged and delete nothing outside their own parts."""
    victims = _victims(tmp_path)
    out = tmp_path / "out" / "o.mp4"
    cfg = fast(lanes=lanes, **LANES)

    with pytest.raises(KeyboardInterrupt):  # frames 0-5 are in: a chunk, or two segments
        render_clip(cfg, clip, out, dreamer=dreamer, on_frame=stop_after_chunks(1))
    parts = parts_dir(out)
    manifest = parts / ("done.json" if lanes > 1 else "manifest.json")
    listed = json.loads(manifest.read_text())
    entries = listed["segments"] if lanes == 1 else [p for c in listed.values() for p in c.values()]
    for entry, name in zip(entries, _names(victims), strict=False):
        entry["file"] = name
    manifest.write_text(json.dumps(listed))
    planted = parts / "notes.txt"
    planted.write_text("planted")
    r = render_clip(cfg, clip, out, dreamer=dreamer, resume=True)
    assert r.frames == 24
    _intact(victims)
    assert planted.read_text() == "planted"  # the folder stays, with what it did not write
    assert sorted(p.name for p in parts.iterdir()) == ["notes.txt"]
    assert any("was left in place" in n for n in r.notes), r.notes


def test_restart_of_a_render_whose_parts_hold_other_files_is_one_line(tmp_path, clip, dreamer):
    out = tmp_path / "o.mp4"
    with pytest.raises(KeyboardInterrupt):
        render_video(fast(), clip, out, dreamer=dreamer, on_frame=interrupt_at(4))
    (parts_dir(out) / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"cannot restart: .* \(notes.txt\); move them away"):
        render_video(fast(), clip, out, dreamer=dreamer, restart=True)
    assert (parts_dir(out) / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------ 2. joined exactly


@pytest.mark.parametrize("output", ["o.mp4", "o.mov", "o.mkv"])
def test_joined_files_decode_to_exactly_their_frames(tmp_path, clip, dreamer, output):
    """Chunks (two lanes, short chunks with lead-ins: seams of 2 frames, too short for the
    B-frames of the chunks beside them) and a single process's segments of 2 frames, at an
    encoder speed that uses B-frames (ultrafast has none)."""
    chunked, single = tmp_path / f"lanes-{output}", tmp_path / f"single-{output}"
    cfg = fast(**LANES).override("encode", preset="veryfast")
    a = render_clip(cfg.override("video", lanes=2), clip, chunked, dreamer=dreamer)
    b = render_clip(cfg.override("video", checkpoint_every=2), clip, single, dreamer=dreamer)
    assert a.frames == b.frames == 24
    assert pictures_decoded(chunked, tmp_path) == 24
    assert pictures_decoded(single, tmp_path) == 24


def test_a_lanes_resume_is_the_uninterrupted_render(tmp_path, clip, dreamer):
    """No batch-independent kernels here: a chunk's frames depend on the batch it shares, so
    a resume dreams the missing chunk beside the partner it had."""
    cfg = fast(lanes=2, **LANES)
    ref = tmp_path / "ref.mkv"
    render_clip(cfg.override("encode", codec="ffv1"), clip, ref, dreamer=dreamer)
    out = tmp_path / "out.mkv"
    cfg = cfg.override("encode", codec="ffv1")
    with pytest.raises(KeyboardInterrupt):  # in the second wave: its partner may be missing
        render_clip(cfg, clip, out, dreamer=dreamer, on_frame=stop_after_chunks(3))
    said: list[str] = []
    r = render_clip(cfg.override("video", lanes=1), clip, out, dreamer=dreamer, resume=True,
                    on_stage=said.append)  # fmt: skip
    assert r.frames == 24 and r.resumed_from >= 12
    assert any("planned with 2 lane(s)" in s for s in said), said
    assert np.abs(frames_of(ref) - frames_of(out)).max() == 0


def test_resume_with_lanes_1_and_restart_of_a_frame_render_just_work(tmp_path, clip, dreamer):
    preset = tmp_path / "tiny.yaml"  # the same settings for the API and the command line
    preset.write_text(json.dumps({**FAST, "video": {**FAST["video"], **LANES, "lanes": 2}}))
    cfg = load_preset(preset)
    out = tmp_path / "o.mp4"
    with pytest.raises(KeyboardInterrupt):
        render_clip(cfg, clip, out, dreamer=dreamer, on_frame=stop_after_chunks(1))
    r = cli("video", clip, "-o", out, "--preset", preset, "--resume", "--lanes", "1")
    assert r.code == 0 and "it goes on in chunks" in r.output, r.output
    frames = tmp_path / "f" / "d_%03d.png"
    frames.parent.mkdir()
    with pytest.raises(KeyboardInterrupt):
        render_video(cfg, clip, frames, dreamer=dreamer, on_frame=interrupt_at(5))
    r = cli("video", clip, "-o", frames, "--preset", preset, "--restart", "--lanes", "1",
            "--set", "video.max_frames=4")  # fmt: skip
    assert r.code == 0, r.output
    assert sorted(p.name for p in frames.parent.glob("d_*.png")) == [
        f"d_{k:03d}.png" for k in range(4)
    ]


# ------------------------------------------------------------------ 3. resume checks


@pytest.mark.parametrize("harm", ["garbage", "truncated", "removed"])
def test_a_frame_harmed_after_a_kill_is_rendered_again(tmp_path, clip, dreamer, harm):
    cfg = fast(max_frames=10)
    ref = tmp_path / "ref" / "d_%04d.png"
    ref.parent.mkdir()
    render_video(cfg, clip, ref, dreamer=dreamer)
    out = tmp_path / "out" / "d_%04d.png"
    out.parent.mkdir()
    with pytest.raises(KeyboardInterrupt):
        render_video(cfg, clip, out, dreamer=dreamer, on_frame=interrupt_at(8))
    victim = out.parent / "d_0003.png"
    if harm == "garbage":
        victim.write_bytes(os.urandom(victim.stat().st_size))
    elif harm == "truncated":
        victim.write_bytes(victim.read_bytes()[:100])
    else:
        victim.unlink()
    r = render_video(cfg, clip, out, dreamer=dreamer, resume=True)
    why = "missing" if harm == "removed" else "damaged"
    assert f"frame d_0003.png is {why}: it is rendered again" in r.notes, r.notes
    assert r.resumed_from <= 3
    for k in range(10):
        name = f"d_{k:04d}.png"
        assert np.array_equal(read_frame(out.parent / name), read_frame(ref.parent / name)), name


def test_a_resume_of_a_finished_frame_render_checks_every_frame(tmp_path, clip, dreamer):
    out = tmp_path / "d_%02d.png"
    cfg = fast(max_frames=4)
    render_video(cfg, clip, out, dreamer=dreamer)
    assert "already complete" in render_video(cfg, clip, out, dreamer=dreamer,
                                              resume=True).notes[0]  # fmt: skip
    (tmp_path / "d_02.png").write_bytes(b"broken")  # not complete any more
    with pytest.raises(UserError, match="nothing to resume"):
        render_video(cfg, clip, out, dreamer=dreamer, resume=True)
    render_video(cfg, clip, out, dreamer=dreamer, overwrite=True)
    assert read_frame(tmp_path / "d_02.png").shape == (48, 64, 3)


def test_an_output_pattern_too_long_for_the_folder_is_one_line(tmp_path, clip):
    assert_one_line_error(
        cli("video", clip, "-o", tmp_path / "d_%0300d.png"), "the file name is 306 bytes long"
    )


# ------------------------------------------------------------------ 4. hangs and silent harm


def _one_line_in_time(*args: object) -> str:
    """Run ``dreamvideo ARGS`` as its own process (a hang would block the test's own): it
    must end within a minute with exit code 2 and one line; returns that line."""
    r = subprocess.run(
        [sys.executable, "-m", "dreamvideo", *map(str, args)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    lines = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("spelling", ["{d}", "{d}/f_%02d.png", "{d}/*.png"])
def test_a_pipe_among_the_frames_is_one_line_not_a_hang(tmp_path, spelling):
    d = tmp_path / "frames"
    d.mkdir()
    for k in range(3):
        Image.fromarray(photo("astronaut", 64)).save(d / f"f_{k:02d}.png")
    os.mkfifo(d / "f_03.png")
    line = _one_line_in_time("video", spelling.format(d=d), "-o", tmp_path / "o.mp4")
    assert "f_03.png is not a regular file" in line


def test_a_pipe_as_a_live_source_is_one_line_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    line = _one_line_in_time("live", tmp_path / "pipe", "-o", tmp_path / "o.mp4")
    assert "is a pipe or socket, which would block" in line


def test_an_exr_frame_of_nan_or_infinity_is_one_line(tmp_path):
    exr = pytest.importorskip("OpenEXR")
    d = tmp_path / "shots"
    d.mkdir()
    for k in range(3):
        frame = np.full((32, 48, 3), 0.5, np.float32)
        if k == 1:  # as a renderer's fireflies write them: linear light, not clipped
            frame[4, 5] = np.nan
            frame[6, 7, 1] = np.inf
        header = {"compression": exr.ZIP_COMPRESSION, "type": exr.scanlineimage}
        with exr.File(header, {"RGB": frame}) as f:
            f.write(str(d / f"s_{k}.exr"))
    assert_one_line_error(
        cli("video", d, "-o", tmp_path / "o.mp4", "--iterations", "0",
            "--set", "video.next_iterations=0"),
        "s_1.exr holds 2 pixel(s) of NaN or infinity",
    )  # fmt: skip
    assert not (tmp_path / "o.mp4").exists()


# ------------------------------------------------------------------ 5. one line each


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mask", "luma:1.2.3-4"], "a luma key is luma:LOW-HIGH with numbers"),
        (["--mask", "luma:.-1"], "a luma key is luma:LOW-HIGH with numbers"),
        (["--mask", "luma:0.2-nan"], "a luma key is luma:LOW-HIGH with numbers"),
        (["--mask", "key:#3070c0/1.2.3"], "with a number for the tolerance"),
        (["--mask", "key:#3070c0/."], "with a number for the tolerance"),
        (["--mask", "key:#3070c0/1e999"], "with a number for the tolerance"),
        (["--region", "a=luma:0..1-1", "--layers", "region(a, blocks.3)"], "numbers 0 <= LOW"),
        (["--mask", "a" * 300 + ".png"], "File name too long"),
        (["--mask", "a" * 300 + ".mp4"], "File name too long"),
        (["--mask", "x:" + "a" * 300], "unknown kind of mask"),
    ],
)
def test_malformed_masks_are_one_line(tmp_path, clip, args, message):
    assert_one_line_error(cli("video", clip, "-o", tmp_path / "o.mp4", *args), message)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--width", "1"], "video.width: must be >= 16, got 1"),
        (["--width", "8"], "video.width: must be >= 16, got 8"),
        (["--width", "16385"], "video.width: must be <= 16384, got 16385"),
        (["--fps", "1e-9"], "--fps 1e-09: give a rate from 0.1 to 240"),
        (["--fps", "nan"], "give a rate from 0.1 to 240"),
    ],
)
def test_live_sizes_and_rates_are_one_line(tmp_path, clip, args, message):
    assert_one_line_error(cli("live", clip, "-o", tmp_path / "o.mp4", *args), message)


def test_live_sources_and_outputs_that_cannot_be_are_one_line(tmp_path, clip):
    def live(*args: object):
        return cli("live", *args, "--seconds", 1)

    assert_one_line_error(live("99999999999999999999", "-o", tmp_path / "o.mp4"),
                          "no camera has that number")  # fmt: skip
    assert_one_line_error(live(tmp_path, "-o", tmp_path / "o.mp4"), "is a folder")
    guide, matte = tmp_path / "g.mp4", tmp_path / "matte.mp4"
    guide.write_bytes(b"the guide")
    matte.write_bytes(Path(clip).read_bytes())
    for args, what in (
        (["--guide", guide, "-o", guide], "is the guide picture"),
        (["--mask", matte, "-o", matte], "is the mask (dream.mask)"),
        (["--region", f"a={matte}", "--layers", "region(a, blocks.3)", "-o", matte],
         "is the region a (dream.regions)"),
    ):  # fmt: skip
        assert_one_line_error(live(clip, *args, "-y"), what)
    assert guide.read_bytes() == b"the guide" and matte.read_bytes() == Path(clip).read_bytes()


def test_an_upscaled_zoom_past_8k_is_one_line(tmp_path):
    assert_one_line_error(
        cli("zoom", "-o", tmp_path / "z.mp4", "--width", 8000, "--height", 8000,
            "--upscale", 4),
        "the zoom's frames would be 32000x32000, over 8K",
    )  # fmt: skip


# ------------------------------------------------------------------ 6. what a user means


def test_a_matte_of_the_sources_size_fits_a_render_rounded_to_even(tmp_path, dreamer):
    src = Path(write_clip(tmp_path / "s.mp4", pan_frames(6, (96, 64))))
    half = np.zeros((64, 96), np.uint8)
    half[:, 48:] = 255
    Image.fromarray(half).save(tmp_path / "m.png")
    out = tmp_path / "o.mp4"
    cfg = fast(width=64).override("dream", mask=str(tmp_path / "m.png"))
    r = render_video(cfg, src, out, dreamer=dreamer)  # 64x42: the aspect 1.524, not 1.5
    assert r.size == (64, 42)
    Image.fromarray(np.zeros((96, 96), np.uint8) + 255).save(tmp_path / "square.png")
    with pytest.raises(UserError, match="is 96x96 but the frames are 64x42"):
        render_video(cfg.override("dream", mask=str(tmp_path / "square.png")), src, out,
                     dreamer=dreamer, overwrite=True)  # fmt: skip


@pytest.mark.parametrize("spelling", ["m_%04d.png", "*.png"])
def test_a_printf_pattern_or_a_glob_is_a_mask(tmp_path, clip, dreamer, spelling):
    masks = tmp_path / "mattes"
    masks.mkdir()
    for k in range(24):
        matte = np.zeros((48, 64), np.uint8)
        matte[:, 32:] = 255  # dream the right half only
        Image.fromarray(matte).save(masks / f"m_{k:04d}.png")
    out = tmp_path / "o.mkv"
    cfg = fast(max_frames=5).override("dream", mask=str(masks / spelling))
    render_video(cfg.override("encode", codec="ffv1"), clip, out, dreamer=dreamer)
    dreamed, source = frames_of(out), frames_of(clip)[:5]
    assert np.abs(dreamed[..., :28, :] - source[..., :28, :]).max() <= 2  # kept
    assert np.abs(dreamed[..., 36:, :] - source[..., 36:, :]).mean() > 2  # dreamed


def ffmpeg(*args: object) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True, timeout=120)


def test_a_clip_whose_frame_times_jitter_is_read_at_its_rate_in_sync(tmp_path, dreamer):
    """30 fps, each frame up to 8 ms early or late, as phones and screen recorders write."""
    src = tmp_path / "jitter.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30", "-f", "lavfi", "-i",
           "sine=frequency=440", "-t", 3, "-vf",
           "setpts='(N/30+(random(1)-0.5)*0.016)/TB'", "-fps_mode", "passthrough",
           "-enc_time_base", "1/90000", "-video_track_timescale", 90000, "-c:v", "libx264",
           "-c:a", "aac", "-shortest", src)  # fmt: skip
    info = probe_video(src)
    assert info.fps == 30 and info.vfr
    out = tmp_path / "o.mp4"
    r = render_video(fast(), src, out, dreamer=dreamer)
    assert abs(r.frames - 90) <= 1
    got = probe_video(out)
    assert got.fps == 30 and abs(got.duration - info.duration) < 0.05


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_a_23976_clip_is_read_at_24000_over_1001(tmp_path, container):
    src = tmp_path / f"film.{container}"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24000/1001", "-t", 2,
           "-c:v", "libx264", src)  # fmt: skip
    assert probe_video(src).fps == Fraction(24000, 1001)


def _onset(path: Path) -> float:
    """Seconds into ``path`` where its sound first gets loud."""
    samples = read_audio(path, 8000)
    return float(np.argmax(np.abs(samples) > 0.3)) / 8000


def test_a_clip_whose_picture_starts_after_its_sound_stays_in_sync(tmp_path, dreamer):
    """The sound (mp3, stored first) starts at 0, the picture 0.1 s later; a tone begins
    0.5 s into the file: 0.4 s after the first picture, in the dream as in the source."""
    both = tmp_path / "both.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30", "-f", "lavfi", "-i",
           "aevalsrc='if(gt(t,0.5),sin(2*PI*800*t),0)':s=44100", "-t", 2, "-c:v", "libx264",
           "-c:a", "libmp3lame", both)  # fmt: skip
    src = tmp_path / "late.mp4"
    ffmpeg("-i", both, "-itsoffset", 0.1, "-i", both, "-map", "0:a", "-map", "1:v",
           "-c", "copy", src)  # fmt: skip
    info = probe_video(src)
    assert abs(info.start - 0.1) < 0.002
    out = tmp_path / "o.mp4"
    render_video(fast(), src, out, dreamer=dreamer)
    assert abs(_onset(out) - 0.4) < 0.03, _onset(out)


def test_a_thumbnail_stored_first_is_not_the_clip(tmp_path, clip, dreamer):
    thumb = tmp_path / "thumb.png"
    Image.fromarray(photo("chelsea", 32)[:24]).save(thumb)
    src = tmp_path / "with-thumb.mkv"
    ffmpeg("-i", thumb, "-i", clip, "-map", 0, "-map", 1, "-c:v:0", "png", "-c:v:1", "copy",
           "-c:a", "copy", src)  # fmt: skip
    info = probe_video(src)
    assert (info.width, info.height, info.stream.index) == (64, 48, 1)
    r = render_video(fast(), src, tmp_path / "o.mp4", dreamer=dreamer)
    assert r.frames == 24


@pytest.mark.parametrize("output, codec", [("o.mov", "ProRes 4444"), ("o.mkv", "FFV1 (lossless)")])
def test_an_alpha_source_keeps_its_alpha_without_a_codec_asked(tmp_path, dreamer, output, codec):
    src = tmp_path / "alpha.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24,format=yuva444p10le", "-t", 0.5,
           "-c:v", "prores_ks", "-profile:v", 4, src)  # fmt: skip
    said: list[str] = []
    out = tmp_path / output
    render_video(fast(), src, out, dreamer=dreamer, on_stage=said.append)
    assert probe_video(out).alpha
    assert any(f"written as {codec}, which keeps it" in s for s in said), said
    said.clear()
    render_video(fast().override("encode", codec="h264"), src, out, dreamer=dreamer,
                 overwrite=True, on_stage=said.append)  # fmt: skip
    assert not probe_video(out).alpha and any("alpha is left out" in s for s in said)


def test_kept_hdr_keeps_its_mastering_display_and_light_levels(tmp_path, dreamer):
    master = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
    sei = tmp_path / "sei.mp4"  # HDR10 as an encoder writes it: in the frames
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24", "-t", 0.5, "-pix_fmt",
           "yuv420p10le", "-c:v", "libx265", "-x265-params",
           "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:"
           f"master-display={master}:max-cll=1000,400", sei)  # fmt: skip
    boxed = tmp_path / "boxed.mkv"  # ... and as a camera's file says it: in the container
    ffmpeg("-i", sei, "-c:v", "libx265", "-x265-params", "log-level=error",
           "-pix_fmt", "yuv420p10le", "-color_primaries", "bt2020", "-color_trc", "smpte2084",
           "-colorspace", "bt2020nc", boxed)  # fmt: skip
    for src in (sei, boxed):
        info = probe_video(src)
        assert info.hdr == "pq" and info.stream.mastering == master
        assert info.stream.light == (1000, 400)
        out = tmp_path / f"dream-{src.stem}.mkv"
        render_video(fast().override("encode", hdr="keep"), src, out, dreamer=dreamer)
        said = first_frame_info(out)
        assert mastering_display(said) == master and light_level(said) == (1000, 400)


def test_a_frame_cut_off_while_written_never_stands_under_its_name(tmp_path, clip, dreamer,
                                                                   monkeypatch):  # fmt: skip
    """Ctrl-C in the middle of writing a frame's bytes: no file under a frame's name is
    ever half a picture, the frames queued behind it are not written under its name nor the
    render finished short, and the resume makes the same frames as an uninterrupted render."""
    cfg = fast(max_frames=6)
    ref = tmp_path / "ref" / "d_%02d.png"
    ref.parent.mkdir()
    render_video(cfg, clip, ref, dreamer=dreamer)
    out = tmp_path / "out" / "d_%02d.png"
    out.parent.mkdir()
    real = Path.write_bytes
    written = []

    def cut_off(self: Path, data: bytes) -> int:
        if data[:4] == b"\x89PNG":
            time.sleep(0.3)  # a slow disk: the dreamer runs ahead and the writer has a queue
            if len(written) == 4:  # the fifth frame: half of it, then Ctrl-C
                real(self, data[: len(data) // 2])
                raise KeyboardInterrupt
            written.append(self)
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", cut_off)
    with pytest.raises(KeyboardInterrupt):
        render_video(cfg, clip, out, dreamer=dreamer)
    monkeypatch.setattr(Path, "write_bytes", real)
    for f in out.parent.glob("d_*.png"):
        assert read_frame(f).shape == (48, 64, 3), f.name  # whole, or not there
    render_video(cfg, clip, out, dreamer=dreamer, resume=True)
    for k in range(6):
        name = f"d_{k:02d}.png"
        assert np.array_equal(read_frame(out.parent / name), read_frame(ref.parent / name))
