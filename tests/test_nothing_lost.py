"""Careless or hostile input never destroys a file, never leaves a blocking mess, never prints
a traceback: one line, and what was rendered is kept."""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
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
from PIL import Image, PngImagePlugin

from dreamvideo.config import Config
from dreamvideo.errors import UserError
from dreamvideo.media.checkpoint import parts_dir
from dreamvideo.media.codecs import codec_args
from dreamvideo.media.ffmpeg import (
    EncodeError,
    VideoWriter,
    describe,
    join_segments,
    read_video_metadata,
    run_ffmpeg,
)
from dreamvideo.media.frames import read_frames
from dreamvideo.media.images import read_image, read_image_metadata
from dreamvideo.render.clip import render_video

FAST = {
    "dream": {"layers": "blocks.3", "octaves": 1, "iterations": 1, "jitter": 2},
    "video": {"next_octaves": 1, "next_iterations": 1, "checkpoint_every": 3},
    "encode": {"preset": "ultrafast"},
}
TINY = ["--octaves", "1", "--iterations", "1"]
FAST_SET = "{dream.octaves: 1, dream.iterations: 1}"  # the same for batch jobs


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
            "-y",  # refused even so: the check, not the lack of -y, keeps the input
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


def test_links_planted_where_the_code_writes_are_never_followed(tmp_path, cat_png, clip):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    ref, out = tmp_path / "ref.mp4", tmp_path / "o.mp4"
    render_video(fast(), clip, ref)
    parts = _interrupted(clip, out)  # frames 0-5 committed as seg_00000 and seg_00001
    assert sorted(p.name for p in parts.glob("seg_*")) == ["seg_00000.mp4", "seg_00001.mp4"]
    # what the resume writes next: the segments and states it makes (a link at their names
    # is replaced, never followed), a name it does not write, then the finished file and the
    # preview over links at their names (-y)
    planted = ["seg_00002.mp4", "seg_00003.mp4", "state_00003.npz", "state_00004.npz"]
    for name in [*planted, "open_00002.mp4"]:
        target = parts / name
        target.unlink(missing_ok=True)
        target.symlink_to(victim)
    r = render_video(fast(), clip, out, resume=True)
    assert victim.read_text() == "keep me"
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(out), frames_of(ref), strict=True))
    # the link it did not make stays, and so does the folder, said once
    assert [p.name for p in parts.iterdir()] == ["open_00002.mp4"]
    assert any("was left in place" in n and "open_00002.mp4" in n for n in r.notes), r.notes
    with pytest.raises(UserError, match="is in the way of .*: it holds no unfinished render"):
        render_video(fast(), clip, out, overwrite=True)
    (parts / "open_00002.mp4").unlink()
    parts.rmdir()
    out.unlink()
    out.symlink_to(victim)
    preview, other = tmp_path / "now.png", tmp_path / "other.txt"
    other.write_text("keep me too")
    preview.symlink_to(other)
    render_video(fast(), clip, out, overwrite=True, preview=preview)
    assert victim.read_text() == "keep me" and other.read_text() == "keep me too"
    assert not out.is_symlink() and not preview.is_symlink()
    assert cli("image", cat_png, "-o", tmp_path / "d.png", *TINY).code == 0
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
        f"error: {notes} is not a video (ffmpeg finds no video stream in it; try converting "
        "it to MP4)",
    ]
    assert json.dumps(r.stderr).count("moov") == 0


# ------------------------------------------------------------------ found by trying (issue 17)


def test_no_output_or_preview_is_a_file_the_run_reads(tmp_path, cat_png, clip):
    guide, song = tmp_path / "guide.png", tmp_path / "song.mp4"
    guide.write_bytes(Path(cat_png).read_bytes())
    song.write_bytes(clip.read_bytes())  # a clip with sound can be the song of a zoom
    odd_song = tmp_path / "song.png"  # any file with sound may be a song, whatever its name
    odd_song.write_bytes(clip.read_bytes())
    kept = {p: p.read_bytes() for p in (guide, song, odd_song)}
    layers = ["--layers", "guide(blocks.3)", "--guide", guide]
    cases = [
        (["image", cat_png, "-o", guide, *layers], "is the guide picture (dream.guide)"),
        (["video", clip, "-o", tmp_path / "v.mp4", *layers, "--preview", guide],
         "preview"),
        (["zoom", "-o", song, "--audio", song], "is the song (zoom.audio)"),
        (["zoom", "-o", song, "--set", f"zoom.audio={song}"], "is the song (zoom.audio)"),
        (["zoom", "-o", tmp_path / "z.mp4", "--audio", odd_song, "--preview", odd_song],
         f"preview {odd_song} is the song (zoom.audio)"),
    ]  # fmt: skip
    for args, message in cases:
        assert_one_line_error(cli(*args, "-y"), message)
    assert {p: p.read_bytes() for p in kept} == kept
    assert not list(tmp_path.glob("*.parts"))


def test_a_link_planted_at_the_output_is_replaced_only_with_y_never_followed(tmp_path, cat_png):
    out, target = tmp_path / "d.png", tmp_path / "elsewhere" / "stolen.png"
    out.symlink_to(target)  # dangling: the folder does not even exist
    assert_one_line_error(cli("image", cat_png, "-o", out, *TINY), "already exists (a link)")
    assert out.is_symlink()
    assert cli("image", cat_png, "-o", out, *TINY, "-y").code == 0
    assert not out.is_symlink() and Image.open(out).size == (96, 64)
    assert not target.parent.exists()


def test_a_link_loop_planted_as_the_lock_is_one_line(tmp_path, clip):
    out = tmp_path / "o.mp4"
    parts_dir(out).mkdir()
    (parts_dir(out) / "lock").symlink_to("lock")  # a link to itself: ELOOP when opened
    for flags in ([], ["--resume"], ["--restart"]):  # a folder with nothing of a render in it
        result = cli("video", clip, "-o", out, *TINY, *flags)
        assert_one_line_error(result, "it holds no unfinished render (lock); move it away")
    (parts_dir(out) / "run.json").write_text("{}")  # ... and one that looks like a render's
    for flags in ([], ["--resume"], ["--restart"]):
        result = cli("video", clip, "-o", out, *TINY, *flags)
        assert_one_line_error(result, "cannot be the lock of")
        assert "dreamvideo did not make it: move it away" in result.output
    assert (parts_dir(out) / "lock").is_symlink()


def test_names_too_long_for_the_folder_are_one_line(tmp_path, cat_png, clip):
    long_png = tmp_path / ("a" * 300 + ".png")
    assert_one_line_error(
        cli("image", cat_png, "-o", long_png, *TINY), "the file name is 304 bytes"
    )
    assert_one_line_error(cli("image", long_png, "-o", tmp_path / "o.png"), "input")
    # a video's name leaves room for its OUTPUT.parts folder beside it
    assert_one_line_error(
        cli("video", clip, "-o", tmp_path / ("v" * 250 + ".mp4"), *TINY),
        "this folder takes names of at most 249 bytes",
    )
    # as long as the folder allows works, temporary names included
    longest = tmp_path / ("b" * 251 + ".png")
    assert cli("image", cat_png, "-o", longest, *TINY).code == 0 and longest.is_file()


def test_names_that_look_like_options_or_protocols_just_work(tmp_path, clip, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(clip, tmp_path / "-in.mp4")
    shutil.copy(clip, tmp_path / "a:b.mp4")
    # a shell user writes ./-in.mp4 for an input (or --); an output after -o is taken as is
    for source, output in (("./-in.mp4", "-dash.mp4"), ("a:b.mp4", "c:d.mp4")):
        result = cli("video", source, "-o", output, *TINY, "--checkpoint-every", 4)
        assert result.code == 0, result.output
        assert len(frames_of(tmp_path / output)) == 9


def test_new_files_get_the_usual_permissions(tmp_path, cat_png, clip):
    old = os.umask(0o022)
    try:
        picture, movie, zoomed = tmp_path / "d.png", tmp_path / "v.mp4", tmp_path / "z.mp4"
        assert cli("image", cat_png, "-o", picture, *TINY).code == 0
        render_video(fast(), clip, movie, preview=tmp_path / "now.png")
        small = ["--width", 32, "--height", 32, "--seconds", 0.2, "--iterations", 1]
        assert cli("zoom", "-o", zoomed, *small, "--set", "dream.iterations=1").code == 0
        for path in (picture, movie, zoomed, tmp_path / "now.png"):
            assert path.stat().st_mode & 0o777 == 0o644, path
    finally:
        os.umask(old)


def test_ffmpeg_runs_apart_from_the_terminals_ctrl_c(tmp_path):
    """The terminal sends Ctrl-C to its whole foreground process group: ffmpeg, in that group,
    would quit and fail the segment being written (an encoding error, exit 2). So every
    ffmpeg runs in a process group of its own."""
    w = VideoWriter(tmp_path / "x.mp4", (16, 16), 25, codec_args(16, 16, 18, False, "ultrafast"))
    try:
        assert os.getpgid(w._proc.pid) != os.getpgid(0)
    finally:
        w.abort()


_RENDER = [sys.executable, "-m", "dreamvideo", "video"]


def test_ctrl_c_in_a_terminal_exits_130_and_keeps_the_checkpoints(tmp_path):
    """Ctrl-C as a terminal sends it, to the whole process group, while frames are written."""
    clip = write_clip(tmp_path / "long.mp4", pan_frames(60, (320, 192)))
    out = tmp_path / "o.mp4"
    args = [clip, "-o", out, *TINY, "--set", "video.next_iterations=0", "--checkpoint-every", 5]
    child = subprocess.Popen(
        [*_RENDER, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a shell gives a command
    )
    manifest = parts_dir(out) / "manifest.json"
    for _ in range(600):  # until a segment is committed and the writer is busy with the next
        with contextlib.suppress(OSError, ValueError):
            if json.loads(manifest.read_text())["segments"]:
                break
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert (
        err.strip().splitlines()[-1].startswith(f"interrupted; finished frames are kept in {out}")
    )
    resumed = cli("video", *args, "--resume")
    assert resumed.code == 0 and len(frames_of(out)) == 60, resumed.output


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["segments"][0].update(frames=str(m["segments"][0]["frames"])),
        lambda m: m["segments"][1].pop("sha256"),
        lambda m: m["segments"][1].update(bytes=None),
        lambda m: m["segments"][0].update(file="../../victim.txt"),
        lambda m: m.update(segments="seg_00000.mp4"),
        lambda m: m["segments"].__setitem__(1, ["not", "an", "entry"]),
    ],
    ids=["frames a string", "no checksum", "bytes null", "another file", "not a list", "a list"],
)
def test_an_edited_manifest_has_its_damaged_part_rendered_again(tmp_path, clip, edit):
    ref, out = tmp_path / "ref.mp4", tmp_path / "out.mp4"
    render_video(fast(), clip, ref)
    manifest = _interrupted(clip, out) / "manifest.json"
    listed = json.loads(manifest.read_text())
    edit(listed)
    manifest.write_text(json.dumps(listed))
    r = render_video(fast(), clip, out, resume=True)
    assert r.frames == 9 and r.notes, r.notes
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(out), frames_of(ref), strict=True))


@pytest.mark.parametrize("comment", ["not json {", "[1, 2, 3]", '"a string"', "null"])
def test_an_existing_output_with_strange_settings_is_never_a_traceback(tmp_path, clip, comment):
    out = tmp_path / "out.mp4"
    run_ffmpeg(["-i", str(clip), "-c", "copy", "-metadata", f"comment={comment}", str(out)], "", 60)
    with pytest.raises(UserError, match="nothing to resume"):
        render_video(fast(), clip, out, resume=True)
    picture = tmp_path / "d.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("dreamvideo", comment)
    Image.new("RGB", (8, 8)).save(picture, pnginfo=info)
    assert read_image_metadata(picture) is None and read_video_metadata(out) is None


def test_an_unreadable_existing_output_is_one_line_for_resume_and_batch(tmp_path, clip, cat_png):
    out, picture = tmp_path / "out.mp4", tmp_path / "d.png"
    out.write_bytes(b"\x00garbage" * 100)
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)  # a PNG signature, then nothing
    assert_one_line_error(cli("video", clip, "-o", out, "--resume"), "nothing to resume")
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        f"- {{kind: video, input: {clip.name}, output: out.mp4}}\n"
        f"- {{kind: image, input: {Path(cat_png).name}, output: d.png}}\n"
    )
    r = cli("batch", jobs)
    assert r.code == 1 and "Traceback" not in r.output
    assert r.output.count("already exists; add -y/--overwrite") == 2, r.output


def _jobs(tmp_path, *lines):
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text("".join(f"- {line}\n" for line in lines))
    return jobs


def test_a_batch_never_writes_over_what_an_earlier_job_reads(tmp_path, cat_png):
    cat = Path(cat_png)
    before = cat.read_bytes()
    jobs = _jobs(
        tmp_path,
        f"{{kind: image, input: {cat.name}, output: first.png, set: {FAST_SET}}}",
        f"{{kind: image, input: first.png, output: {cat.name}, set: {FAST_SET}}}",
    )
    r = cli("batch", jobs, "-y")
    assert r.code == 1 and cat.read_bytes() == before
    first = tmp_path / "first.png"
    assert f"output {cat} is the input of job 1 ({first}), which comes first" in r.err
    assert f"job 1 ({first}): done" in r.err


def test_a_job_that_reads_an_earlier_jobs_output_waits_for_it(tmp_path, cat_png):
    cat = Path(cat_png)
    jobs = _jobs(
        tmp_path,
        f"{{kind: image, input: {cat.name}, output: once.png, set: {FAST_SET}}}",
        f"{{kind: image, input: once.png, output: twice.png, set: {FAST_SET}}}",
        f"{{kind: image, input: missing.png, output: never.png, set: {FAST_SET}}}",
        f"{{kind: image, input: never.png, output: nor.png, set: {FAST_SET}}}",
    )
    r = cli("batch", jobs)
    assert r.code == 1, r.output
    assert (tmp_path / "twice.png").is_file() and not (tmp_path / "nor.png").exists()
    assert "input: file" in r.output and "needs the output of job 3, which failed" in r.output
    # run again: the first two are complete; the second is redone only if the first was
    again = cli("batch", jobs)
    assert again.err.count("skipped: already complete") == 2, again.output
    (tmp_path / "once.png").unlink()
    redone = cli("batch", jobs, "-y")
    assert redone.err.count(": done: ") == 2 and "skipped" not in redone.err, redone.output


def test_a_clips_output_is_never_its_mask_or_a_regions_matte(tmp_path, clip):
    matte = tmp_path / "matte.mp4"
    shutil.copy(clip, matte)
    before = matte.read_bytes()
    for args, what in (
        (["--mask", matte], "is the mask (dream.mask)"),
        (["--region", f"a={matte}", "--layers", "region(a, blocks.3)"],
         "is the region a (dream.regions)"),
    ):  # fmt: skip
        assert_one_line_error(cli("video", clip, "-o", matte, *args, "-y", *TINY), what)
    assert matte.read_bytes() == before
