"""The newest paths (frame folders, lanes and chunks) under careless and hostile use: nothing
is deleted that the render did not write, joined files hold exactly their frames, resumes are
identical and trust nothing they did not check."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, cli, interrupt_at, pan_frames, write_clip

from dreamvideo.config import Config
from dreamvideo.errors import UserError
from dreamvideo.media.checkpoint import parts_dir
from dreamvideo.media.ffmpeg import ffmpeg_exe
from dreamvideo.media.frames import read_frames
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
