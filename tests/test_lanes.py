"""Lanes (--lanes N): the chunks of a clip dreamed side by side in one process, their ascents
run in lockstep as one batch; the same plan, seams and resume as chunks on Ray workers."""

from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, cli, pan_frames, photo, write_clip

from dreamvideo.config import Config
from dreamvideo.engine.device import to_tensor
from dreamvideo.engine.lanes import LanesClosed, Lockstep
from dreamvideo.media.frames import read_frames
from dreamvideo.render import dreamer_for
from dreamvideo.render.clip import render_video
from dreamvideo.scale.chunked import render_video_chunked

FAST = {
    # on the CPU also where a GPU is (exactness needs batch-independent kernels, see below)
    "dream": {"layers": "blocks.3", "octaves": 1, "iterations": 3, "device": "cpu"},
    "video": {"next_iterations": 2, "chunk_seconds": 0.4, "chunk_overlap": 4},
    "encode": {"codec": "ffv1"},
}
TINY = [
    "--set", "dream.layers=blocks.3", "--octaves", "1", "--iterations", "2",
    "--set", "video.chunk_seconds=0.4", "--set", "video.chunk_overlap=4",
    "--set", "encode.preset=ultrafast",
]  # fmt: skip


def fast(lanes: int) -> Config:
    return Config.from_dict({**FAST, "video": {**FAST["video"], "lanes": lanes}})


@pytest.fixture()
def clip(tmp_path):
    return write_clip(tmp_path / "pan.mp4", pan_frames(24, (96, 64)))


def frames_of(path) -> np.ndarray:
    return np.stack([f for _, f in read_frames(path)]).astype(np.int16)


@pytest.fixture()
def exact_kernels():
    """The reference convolutions: oneDNN's batched kernels round differently from its
    single-image ones (1e-5 of a feature), and the dream's touch-ups amplify such rounding
    frame after frame (a ReLU6 that flips changes a gradient), so exactness is tested with
    kernels that do not depend on the batch."""
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = True


def test_two_lanes_render_the_two_chunks_frame_for_frame(tmp_path, clip, exact_kernels):
    """One lane renders the two chunks one after the other, as one worker would; two lanes
    render them at once as one batch. The files are the same frame for frame (0 levels
    apart with batch-independent kernels), seams and all."""
    said: list[str] = []
    dreamer = dreamer_for(fast(1).dream)
    one = render_video_chunked(fast(1), clip, tmp_path / "one.mkv", dreamer=dreamer)
    two = render_video_chunked(
        fast(2), clip, tmp_path / "two.mkv", dreamer=dreamer, on_stage=said.append
    )
    assert one.frames == two.frames == 24
    assert any("2 chunk(s)" in s and "2 lanes in lockstep" in s for s in said), said
    a, b = frames_of(tmp_path / "one.mkv"), frames_of(tmp_path / "two.mkv")
    assert np.abs(a - b).max() == 0


def test_lanes_resume_with_only_the_missing_chunks(tmp_path, clip, exact_kernels):
    dreamer = dreamer_for(fast(2).dream)
    ref = tmp_path / "ref.mkv"
    render_video_chunked(fast(2), clip, ref, dreamer=dreamer)
    out = tmp_path / "out.mkv"

    def stop_after_a_chunk(report):
        if report.index + 1 in (12, 24):  # a chunk has landed (its last frame is reported)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_video_chunked(fast(2), clip, out, dreamer=dreamer, on_frame=stop_after_a_chunk)
    assert not out.exists()
    assert not any(t.name.startswith("dreamvideo-lane") for t in threading.enumerate())
    # another lane count is the same render
    r = render_video_chunked(fast(3), clip, out, dreamer=dreamer, resume=True)
    assert r.resumed_from >= 10 and r.frames == 24
    assert np.abs(frames_of(ref) - frames_of(out)).max() == 0


def test_lanes_dream_in_one_batch_and_a_lane_that_leaves_holds_nobody_up():
    """Three lanes: two hand in ascents that fit together, one leaves; the two run as one
    batch and each gets the image it would get alone."""
    dreamer = dreamer_for(fast(1).dream)
    pictures = [to_tensor(photo(n, 64)[:40], dreamer.device) for n in ("astronaut", "chelsea")]
    alone = [dreamer(x) for x in pictures]
    lock = Lockstep(3)
    got: dict[int, torch.Tensor] = {}

    def lane(k: int) -> None:
        if k < 2:
            got[k] = dreamer.in_lanes(lock)(pictures[k])
        lock.leave()

    threads = [threading.Thread(target=lane, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert lock.batches == 1 and lock.dreams == 2
    for k in range(2):
        torch.testing.assert_close(got[k], alone[k], atol=1e-3, rtol=0)


def test_a_failing_lane_stops_the_others():
    dreamer = dreamer_for(fast(1).dream)
    lock = Lockstep(2)
    x = to_tensor(photo("astronaut", 64), dreamer.device)
    errors: list[BaseException] = []

    def waiting() -> None:
        try:
            dreamer.in_lanes(lock)(x)
        except LanesClosed as e:
            errors.append(e)

    t = threading.Thread(target=waiting)
    t.start()
    lock.close()  # what a lane that failed does
    t.join(timeout=30)
    assert not t.is_alive() and len(errors) == 1
    with pytest.raises(LanesClosed):
        dreamer.in_lanes(lock)(x)


def test_the_command_line_runs_lanes_and_says_what_is_wrong(tmp_path, clip):
    out = tmp_path / "cli.mp4"
    r = cli("video", clip, "-o", out, "--lanes", "2", *TINY)
    assert r.code == 0, r.output
    assert "2 lanes in lockstep" in r.err
    assert len(frames_of(out)) == 24
    assert_one_line_error(
        cli("video", clip, "-o", tmp_path / "x.mp4", "--lanes", "2", "--preview", "p.png"),
        "--preview works without --workers and --lanes",
    )


def test_lanes_keep_each_lanes_own_pull_target_and_regions(tmp_path, clip, exact_kernels):
    """Two lanes with the temporal pull (a target per frame) and a regional objective (a
    matte per frame): each lane must pull towards its own frames and read its own matte,
    frame for frame as when the chunks are dreamed one after the other."""
    cfg = Config.from_dict({
        **FAST,
        "dream": {**FAST["dream"], "layers": "region(a, blocks.3)", "regions": "a=luma:0.5-1"},
        "video": {**FAST["video"], "temporal": 0.3, "memory": 3},
    })  # fmt: skip
    dreamer = dreamer_for(cfg.dream)
    one = render_video_chunked(cfg, clip, tmp_path / "one.mkv", dreamer=dreamer)
    two = render_video_chunked(cfg.override("video", lanes=2), clip, tmp_path / "two.mkv",
                               dreamer=dreamer)  # fmt: skip
    assert one.frames == two.frames == 24
    assert np.abs(frames_of(tmp_path / "one.mkv") - frames_of(tmp_path / "two.mkv")).max() == 0


def test_a_seam_crossfades_the_ending_chunk_into_the_next(tmp_path, exact_kernels):
    """Two chunks of 12 frames at 24 fps, the second dreamed from 4 frames early: frames
    8-11 of the file are the first chunk's dream eased into the second's, by the weights
    written here; before and after, each chunk's own frames (each dreamed alone here)."""
    src = write_clip(tmp_path / "pan.mp4", pan_frames(24, (96, 64)), fps=Fraction(24))
    cfg = Config.from_dict({**FAST, "video": {**FAST["video"], "chunk_seconds": 0.5,
                                              "chunk_overlap": 4}})  # fmt: skip
    dreamer = dreamer_for(cfg.dream)
    joined = tmp_path / "joined.mkv"
    render_video_chunked(cfg.override("video", lanes=2), src, joined, dreamer=dreamer)
    a, b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    render_video(cfg.override("video", max_frames=12), src, a, dreamer=dreamer)
    render_video(cfg.override("video", start=8 / 24, max_frames=16), src, b, dreamer=dreamer)
    got, first, second = frames_of(joined), frames_of(a), frames_of(b)
    w = (np.arange(1, 5) / 5)[:, None, None, None]
    w = w * w * (3 - 2 * w)  # eased in and out
    seam = (1 - w) * first[8:12] + w * second[:4]

    def off(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.abs(x - y).mean())

    # each chunk's frames as dreamed alone, up to the rounding that batching amplifies
    # (measured 0.00002 and 0.13 levels), and the seam the mix of the two (0.21 levels off
    # it, against 1.5 from the second chunk's frames alone: what a join without the
    # crossfade gives)
    assert off(got[:8], first[:8]) < 0.1 and off(got[12:], second[4:]) < 0.5
    assert off(got[8:12], seam) < 0.3 * min(off(got[8:12], second[:4]), off(got[8:12], first[8:12]))
    assert off(first[8:12], second[:4]) > 1  # the two dreams differ there
