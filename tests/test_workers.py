"""Chunked renders on Ray workers (--workers): planning, seams, sound, resume, retries."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, cli, pan_frames, write_clip

from dreamvideo.config import Config
from dreamvideo.media.checkpoint import parts_dir
from dreamvideo.media.frames import probe_video, read_frames
from dreamvideo.media.metrics import measure_clip
from dreamvideo.render.clip import render_video
from dreamvideo.scale.chunked import render_video_chunked
from dreamvideo.scale.chunks import Chunk, crossfade, plan_chunks

ray = pytest.importorskip("ray")

FAST = {
    "dream": {"layers": "blocks.3", "octaves": 1, "iterations": 2, "jitter": 2},
    "video": {"next_octaves": 1, "next_iterations": 1, "chunk_seconds": 0.5, "chunk_overlap": 4},
    "encode": {"preset": "ultrafast"},
}
TINY = [
    "--set", "dream.layers=blocks.3", "--set", "dream.jitter=2",
    "--octaves", "1", "--iterations", "2",
    "--set", "video.next_octaves=1", "--set", "video.next_iterations=1",
    "--set", "video.chunk_seconds=0.5", "--set", "video.chunk_overlap=4",
    "--set", "encode.preset=ultrafast",
]  # fmt: skip


def fast(**video):
    return Config.from_dict({**FAST, "video": {**FAST["video"], **video}})


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (renders reuse a connection that is already there)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture()
def clip(tmp_path):
    return Path(write_clip(tmp_path / "clip.mp4", pan_frames(40, (64, 48)), audio=True))


def frames_of(path):
    return [f for _, f in read_frames(path)]


def temporary_files() -> set[str]:
    """What dreamvideo keeps in the temporary folder (workers' copies of the clip, chunks)."""
    return {p.name for p in Path(tempfile.gettempdir()).glob("dreamvideo-*")}


# ------------------------------------------------------------------ planning (no Ray)


def test_chunks_cover_the_clip_split_long_shots_and_start_fresh_at_cuts():
    chunks = plan_chunks(0, 100, cuts=[40], chunk_frames=15, overlap=4)
    assert chunks[0].start == 0 and chunks[-1].end == 100
    assert all(a.end == b.start for a, b in zip(chunks, chunks[1:], strict=False))
    assert all(c.end - c.start <= 15 for c in chunks)
    at_cut = next(c for c in chunks if c.start == 40)
    assert at_cut.lead == 0  # a scene cut needs no overlap: the dream restarts there anyway
    assert chunks[0].lead == 0 and all(c.lead == 4 for c in chunks if c.start not in (0, 40))
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.tail == b.lead and a.main[1] - a.main[0] >= 1
    # frames of the file: every chunk's main plus every overlap, each frame once
    assert sum(c.main[1] - c.main[0] + c.lead for c in chunks) == 100
    assert plan_chunks(0, 10, [], 15, 4) == [Chunk(0, 0, 10, 0, 0)]  # short: one chunk


def test_crossfade_goes_from_the_old_dream_to_the_new():
    tail, head = np.zeros((4, 2, 2, 3), np.uint8), np.full((4, 2, 2, 3), 200, np.uint8)
    mixed = crossfade(tail, head)[:, 0, 0, 0].astype(int)
    assert list(mixed) == sorted(mixed) and 0 < mixed[0] < 50 and 150 < mixed[-1] < 200


# ------------------------------------------------------------------ renders


def test_a_chunked_render_matches_the_single_process_file_and_its_seams_do_not_pop(
    tmp_path, clip, local_ray
):
    one, many = tmp_path / "one.mp4", tmp_path / "many.mp4"
    # lossless: at 64x48 the encoder's keyframe at each joined segment would outweigh the seam
    cfg = fast().override("encode", lossless=True)
    render_video(cfg, clip, one)
    heard, saved = [], []

    def hear(p):  # the plan the render saved, read while it runs (the folder goes at the end)
        heard.append(p)
        if not saved:
            saved.extend(json.loads((parts_dir(many) / "chunks.json").read_text())["chunks"])

    r = render_video_chunked(cfg, clip, many, workers=2, on_worker=hear)
    a, b = probe_video(one), probe_video(many)
    assert (b.frame_count, b.fps, b.width, b.height) == (a.frame_count, a.fps, a.width, a.height)
    assert b.has_audio and abs(b.duration - a.duration) < 0.05
    assert r.frames == 40 and not parts_dir(many).exists()
    assert {p.worker for p in heard} == {0, 1}  # both workers rendered
    # steadiness: the whole clip, and every seam against the frames inside the chunks
    m_one, m_many = measure_clip(clip, one), measure_clip(clip, many)
    assert m_many.warp_ratio <= 1.2 * m_one.warp_ratio
    assert len(saved) > 1 and all(lead for _, _, lead in saved[1:])  # seams to look at
    seams = {t for start, _, lead in saved[1:] for t in range(start - lead - 1, start)}
    inside = [e for t, e in enumerate(m_many.warp_errors) if t not in seams]
    at_seams = [m_many.warp_errors[t] for t in sorted(seams)]
    assert max(at_seams) <= max(inside)


def test_an_upscaled_render_on_workers_is_the_upscaled_render(tmp_path, clip, local_ray):
    cfg = fast().override("encode", lossless=True).override("dream", upscale=2.0)
    one, many = tmp_path / "one.mkv", tmp_path / "many.mkv"
    render_video(cfg, clip, one)
    r = render_video_chunked(cfg, clip, many, workers=2)
    info = probe_video(many)
    assert (info.width, info.height, r.frames) == (128, 96, 40)
    a, b = frames_of(one), frames_of(many)
    assert np.array_equal(a[0], b[0])  # the first chunk starts as the single render does
    assert measure_clip(clip, many).warp_ratio <= 1.2 * measure_clip(clip, one).warp_ratio


def test_a_killed_worker_has_its_chunk_rendered_again(tmp_path, clip, local_ray):
    # The kill must land before the worker's next chunk, not race a chunk that takes
    # milliseconds: a chunk's last report is queued before its result returns, and the driver
    # hears reports before it hands that worker more work. Short chunks keep work pending.
    killed = []

    def kill_after_first_chunk(p):
        if p.done == p.total and not killed:
            killed.append(p.pid)
            os.kill(p.pid, signal.SIGKILL)

    out = tmp_path / "out.mp4"
    cfg = fast(chunk_seconds=0.25, chunk_overlap=2)
    before = temporary_files()
    r = render_video_chunked(cfg, clip, out, workers=2, on_worker=kill_after_first_chunk)
    assert killed and any("died during chunk" in n for n in r.notes), r.notes
    assert len(frames_of(out)) == 40
    # the killed worker's chunk folder and the workers' copy of the clip are gone too
    assert temporary_files() <= before


def test_a_killed_driver_resumes_with_only_the_missing_chunks(tmp_path, clip, local_ray):
    out, before = tmp_path / "out.mp4", temporary_files()
    driver = subprocess.Popen(
        [sys.executable, "-m", "dreamvideo", "video", clip, "-o", out, "--workers", "2", *TINY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own local Ray lives in its process group
    )
    listed, t0 = {}, time.monotonic()
    while time.monotonic() - t0 < 90 and not any(k.startswith("chunk") for k in listed):
        time.sleep(0.1)
        with contextlib.suppress(OSError, ValueError):
            listed = json.loads((parts_dir(out) / "done.json").read_text())
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and its Ray, as a closed terminal would
    driver.wait()
    kept = sorted(k for k in listed if k.startswith("chunk"))
    assert kept and not out.exists()
    assert_one_line_error(
        cli("video", clip, "-o", out, "--workers", "2", *TINY, "--blend", "0.5", "--resume"),
        "made with other settings (config.video.blend: 0.98 -> 0.5)",
    )
    # another worker count is the same render: the chunks do not depend on it
    r = cli("video", clip, "-o", out, "--workers", "1", *TINY, "--resume")
    assert r.code == 0, r.output
    assert f"{len(kept)} already done" in r.err and "resumed at frame" in r.out
    assert len(frames_of(out)) == 40
    # the killed driver's workers left their files; the resume, the same render, removed them
    assert temporary_files() <= before


def test_a_resume_with_another_worker_count_keeps_the_saved_chunk_plan(tmp_path, clip, local_ray):
    cfg, out = fast(chunk_seconds=10.0), tmp_path / "out.mp4"

    def stop_after_a_chunk(report):
        if report.index + 1 in (20, 40):  # a chunk has landed (its last frame is reported)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # two workers: two chunks of 20 frames
        render_video_chunked(cfg, clip, out, workers=2, on_frame=stop_after_a_chunk)
    said = []
    r = render_video_chunked(cfg, clip, out, workers=1, resume=True, on_stage=said.append)
    assert r.resumed_from == 20  # one worker alone would have planned one chunk of 40
    assert any("2 chunk(s) of up to 20 frames" in s and "1 already done" in s for s in said)
    assert len(frames_of(out)) == 40


def test_the_command_line_runs_workers_and_says_what_is_wrong(tmp_path, clip, local_ray):
    out = tmp_path / "cli.mp4"
    r = cli("video", clip, "-o", out, "--workers", "2", *TINY)
    assert r.code == 0, r.output
    assert "chunk(s)" in r.err and "worker 1 on node" in r.err
    assert len(frames_of(out)) == 40
    assert_one_line_error(
        cli("video", clip, "-o", tmp_path / "x.mp4", "--ray-address", "auto"), "go with --workers"
    )
    assert_one_line_error(
        cli("video", clip, "-o", tmp_path / "x.mp4", "--workers", "2", "--preview", "p.png"),
        "--preview works without --workers",
    )


def test_impossible_worker_requests_end_at_once(tmp_path, clip, local_ray):
    t0 = time.monotonic()
    out = tmp_path / "x.mp4"
    r = cli("video", clip, "-o", out, "--workers", "2", *TINY, "--gpus-per-worker", "1")
    assert_one_line_error(r, "--gpus-per-worker 1: no machine of the Ray cluster has a GPU")
    assert "(1 machine: 2 CPUs, no GPU)" in r.err and time.monotonic() - t0 < 60
    assert not parts_dir(out).exists()
    # more workers than there are chunks: only as many start as have a chunk
    said = cli("video", clip, "-o", out, "--workers", "10000000000000000000", *TINY)
    assert said.code == 0 and len(frames_of(out)) == 40, said.output


def test_ray_missing_is_one_line_naming_the_extra(tmp_path, clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    result = cli("video", clip, "-o", tmp_path / "x.mp4", "--workers", "2", *TINY)
    assert_one_line_error(result, "pip install 'dreamvideo[ray]'")
    assert not parts_dir(tmp_path / "x.mp4").exists()


# ------------------------------------------------------------------ batch


def jobs_file(tmp_path, clip) -> Path:
    (tmp_path / "cat.png").write_bytes(Path(write_png(tmp_path)).read_bytes())
    path = tmp_path / "jobs.yaml"
    small = "dream.octaves: 1, dream.iterations: 1, dream.layers: blocks.3"
    path.write_text(
        f"""
- kind: image
  input: cat.png
  output: out/cat-dream.png
  set: {{{small}}}
- kind: video
  input: {clip.name}
  output: out/clip-dream.mp4
  set: {{{small}, video.max_frames: 20, video.chunk_seconds: 0.5, encode.preset: ultrafast}}
- kind: zoom
  output: out/zoom.mp4
  set: {{{small}, zoom.seconds: 0.25, zoom.width: 32, zoom.heigth: 32}}
"""
    )
    (tmp_path / "out").mkdir()
    return path


def write_png(tmp_path) -> Path:
    from conftest import photo
    from PIL import Image

    Image.fromarray(photo("chelsea", 64)).save(tmp_path / "src.png")
    return tmp_path / "src.png"


@pytest.mark.parametrize("workers", [None, 2])
def test_a_batch_runs_the_good_jobs_reports_the_bad_one_and_skips_finished_ones(
    tmp_path, clip, workers, local_ray
):
    jobs = jobs_file(tmp_path, clip)
    extra = ["--workers", str(workers)] if workers else []
    r = cli("batch", jobs, *extra)
    assert r.code == 1, r.output
    bad = [line for line in r.err.splitlines() if "failed:" in line]
    assert bad == [
        "job 3 (out/zoom.mp4): failed: zoom.heigth: unknown key; valid keys: seconds, fps, "
        "width, height, zoom, rotate, pan_x, pan_y, center_x, center_y, layers, iterations, "
        "octaves, step, interpolation, start, color, loop, loop_frames, interpolate, "
        "checkpoint_every, audio"
    ]
    assert "1 of 3 job(s) failed" in r.err
    assert len(frames_of(tmp_path / "out" / "clip-dream.mp4")) == 20
    assert (tmp_path / "out" / "cat-dream.png").stat().st_size > 1000
    again = cli("batch", jobs, *extra)
    assert again.err.count("skipped: already complete") == 2


def test_a_masked_render_on_workers_keeps_the_source_where_black(tmp_path, clip, local_ray):
    from PIL import Image

    matte = np.zeros((48, 64), np.uint8)
    matte[:, 32:] = 255
    Image.fromarray(matte).save(tmp_path / "half.png")
    cfg = (
        fast().override("encode", lossless=True).override("dream", mask=str(tmp_path / "half.png"))
    )
    out = tmp_path / "many.mkv"
    r = render_video_chunked(cfg, clip, out, workers=2)
    assert r.frames == 40
    source, dream = np.stack(frames_of(clip)).astype(int), np.stack(frames_of(out)).astype(int)
    assert np.abs(dream - source)[:, :, :32].max() <= 1
    assert np.abs(dream - source)[:, :, 40:].mean() > 2
