import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import (
    assert_one_line_error,
    cli,
    interrupt_at,
    pan_frames,
    write_clip,
)
from PIL import Image

from dreamvideo.config import Config, VideoConfig
from dreamvideo.errors import UserError
from dreamvideo.media.checkpoint import parts_dir
from dreamvideo.media.ffmpeg import read_video_metadata
from dreamvideo.media.frames import probe_video, read_frames
from dreamvideo.media.metrics import measure_clip
from dreamvideo.render.clip import hd_hint, render_video

FAST = {
    "dream": {"layers": "blocks.3", "octaves": 1, "iterations": 2, "jitter": 4},
    "video": {"next_octaves": 1, "next_iterations": 1, "checkpoint_every": 4},
    "encode": {"preset": "ultrafast"},
}


def fast(**sections):
    data = {k: dict(v) for k, v in FAST.items()}
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return Config.from_dict(data)


def frames_of(path):
    return [f for _, f in read_frames(path)]


@pytest.fixture()
def clip(tmp_path):
    """12 frames, odd size, 29.97 fps, with sound."""
    return write_clip(tmp_path / "clip.mp4", pan_frames(12, (65, 47)), audio=True)


def test_video_keeps_frames_rate_size_and_sound(clip, tmp_path):
    out = tmp_path / "dream.mp4"
    r = render_video(fast(), clip, out)
    src, dst = probe_video(clip), probe_video(out)
    assert r.frames == 12 == len(frames_of(out))
    assert (
        (dst.width, dst.height, dst.fps)
        == (65, 47, Fraction(30000, 1001))
        == (src.width, src.height, src.fps)
    )
    assert dst.has_audio
    assert abs(dst.duration - src.duration) < 0.1
    meta = read_video_metadata(out)
    assert meta["config"]["dream"]["layers"] == "blocks.3" and meta["frames"] == 12
    assert not parts_dir(out).exists()
    strength = np.mean(
        [
            np.abs(a.astype(int) - b).mean()
            for a, b in zip(frames_of(out), frames_of(clip), strict=True)
        ]
    )
    assert strength > 3  # it did dream


def test_sources_without_sound_and_no_audio_flag(tmp_path, clip):
    silent = write_clip(tmp_path / "silent.mp4", pan_frames(5, (48, 32)))
    out = tmp_path / "a.mp4"
    render_video(fast(), silent, out)
    assert not probe_video(out).has_audio and len(frames_of(out)) == 5
    out2 = tmp_path / "b.mp4"
    render_video(fast(encode={"audio": False}, video={"max_frames": 3}), clip, out2)
    assert not probe_video(out2).has_audio


def test_range_and_width_select_frames_and_size(clip, tmp_path):
    out = tmp_path / "part.mkv"
    r = render_video(fast(video={"start": 0.2, "max_frames": 4, "width": 32}), clip, out)
    assert r.frames == 4 and r.size == (32, 24)
    meta = read_video_metadata(out)
    assert meta["first_frame"] == 6  # round(0.2 s * 29.97 fps)
    m = measure_clip(clip, out)  # aligns on the first frame stored in the metadata
    assert m.frames == 4


# the second keeps more state across the checkpoint: frames since the last touch-up, and the
# average of the last dreams that the temporal pull aims at
@pytest.mark.parametrize("video", [{}, {"stride": 2, "temporal": 0.3, "memory": 4}])
def test_interrupted_render_resumes_to_the_same_video(clip, tmp_path, video):
    cfg = fast(video=video)
    ref = tmp_path / "ref.mp4"
    render_video(cfg, clip, ref)
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        render_video(cfg, clip, out, on_frame=interrupt_at(6))
    parts = parts_dir(out)
    assert [p.name for p in sorted(parts.glob("seg_*.mp4"))] == ["seg_00000.mp4"]
    assert not out.exists()
    with pytest.raises(UserError, match="unfinished render.*--resume"):
        render_video(cfg, clip, out)
    with pytest.raises(UserError, match=r"other settings \(config\.dream\.iterations: 2 -> 3\)"):
        render_video(fast(dream={"iterations": 3}, video=video), clip, out, resume=True)
    r = render_video(cfg, clip, out, resume=True)
    assert r.resumed_from == 4 and r.frames == 12
    for a, b in zip(frames_of(out), frames_of(ref), strict=True):
        assert np.array_equal(a, b)
    assert probe_video(out).has_audio


# The child renders and kills itself (SIGKILL: no cleanup code runs) once frame 7 is done and
# the checkpoint at frame 6 is on disk, before the one at frame 9.
_KILLED_CHILD = """
import json, os, signal, sys, time
import dreamvideo.render.clip as rv
from dreamvideo.cli.entry import main

real, out = rv.render_video, sys.argv[-1]

def on_frame(report):
    if report.done == 7:
        manifest = out + ".parts/manifest.json"
        for _ in range(3000):  # the writer thread commits frame 6 on its own time
            if len(json.load(open(manifest))["segments"]) == 2:
                break
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)

rv.render_video = lambda *a, **k: real(*a, **{**k, "on_frame": on_frame})
sys.exit(main(sys.argv[1:]))
"""


def test_killed_render_resumes_from_its_last_checkpoint(tmp_path):
    clip = write_clip(tmp_path / "long.mp4", pan_frames(12, (48, 32)), audio=True)
    args = [
        "video",
        clip,
        "--set",
        "dream.layers=blocks.3",
        "--octaves",
        "1",
        "--iterations",
        "2",
        "--set",
        "video.next_octaves=1",
        "--set",
        "video.next_iterations=1",
        "--checkpoint-every",
        "3",
        "--set",
        "encode.preset=ultrafast",
    ]
    ref = tmp_path / "ref.mp4"
    assert cli(*args, "-o", ref).code == 0
    out = tmp_path / "out.mp4"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, *args, "-o", str(out)],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    assert not out.exists()
    r = cli(*args, "-o", out, "--resume")
    assert r.code == 0, r.output
    assert "resumed at frame 6" in r.output
    got, want = frames_of(out), frames_of(ref)
    assert len(got) == len(want) == 12
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


def test_scene_cut_restarts_the_dream(tmp_path):
    frames = pan_frames(5, (64, 48)) + pan_frames(5, (64, 48), name="coffee")
    clip = write_clip(tmp_path / "cut.mp4", frames)
    reports = []
    r = render_video(fast(), clip, tmp_path / "o.mp4", on_frame=reports.append)
    assert [rep.index for rep in reports if rep.fresh] == [0, 5]
    assert r.scene_cuts == 1


def test_carrying_the_dream_is_steadier_than_dreaming_each_frame(tmp_path):
    clip = write_clip(tmp_path / "pan.mp4", pan_frames(10, (128, 96), step=(1.5, 0.5)))
    dream = {"layers": "blocks.8", "octaves": 2, "iterations": 8, "step": 3.0}
    lossless = {"lossless": True}  # so compression noise does not blur the comparison
    steady = tmp_path / "steady.mp4"
    render_video(
        fast(
            dream=dream,
            video={"blend": 0.98, "next_iterations": 2, "tracked_step": 0.5},
            encode=lossless,
        ),
        clip,
        steady,
    )
    alone = tmp_path / "alone.mp4"
    render_video(
        fast(
            dream=dream,
            video={"blend": 0.0, "next_octaves": 2, "next_iterations": 8, "tracked_step": 1.0},
            encode=lossless,
        ),
        clip,
        alone,
    )
    a, b = measure_clip(clip, steady), measure_clip(clip, alone)
    assert a.strength > 0.9 * b.strength > 5
    assert a.warp_ratio < 0.75 * b.warp_ratio
    assert 0.67 < a.drift < 1.5


def test_metrics_of_a_clip_against_itself(tmp_path):
    clip = write_clip(tmp_path / "pan.mp4", pan_frames(6, (64, 48)))
    m = measure_clip(clip, clip)
    assert m.strength == 0 and m.warp_ratio == pytest.approx(1.0)
    assert m.warp_error_source < 5  # the flow follows a clean pan


def test_the_long_range_error_sees_a_dream_that_wanders_slowly(tmp_path):
    # a still shot; one dream drifts from one pattern to another a little each frame (steady
    # from frame to frame, inconsistent over spans), the other flickers at random each frame
    src = pan_frames(12, (64, 48), step=(0.0, 0.0))
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-30, 30, (2, 48, 64, 3))
    wander = [np.clip(f + a + (b - a) * t / 11, 0, 255).astype(np.uint8) for t, f in enumerate(src)]
    flicker = [np.clip(f + rng.uniform(-6, 6, f.shape), 0, 255).astype(np.uint8) for f in src]
    source = write_clip(tmp_path / "still.mp4", src, lossless=True)
    measured = {}
    for name, frames in (("wander", wander), ("flicker", flicker)):
        out = write_clip(tmp_path / f"{name}.mp4", frames, lossless=True)
        measured[name] = measure_clip(source, out, long_gap=4)
    w, f = measured["wander"], measured["flicker"]
    assert w.long_gap == f.long_gap == 4
    assert w.long_error_output > 3 * w.warp_error_output  # it adds up over four frames
    assert f.long_error_output < 1.3 * f.warp_error_output  # random flicker does not
    assert measure_clip(source, source).long_gap == 0  # not asked: not measured


def test_hd_frames_dreamed_at_full_size_on_a_cpu_get_a_hint():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    hint = hd_hint((1280, 720), cpu, VideoConfig())
    assert hint and "1280x720" in hint and "--preset video-hd" in hint
    assert hd_hint((640, 360), cpu, VideoConfig()) is None  # small frames: nothing to say
    assert hd_hint((1920, 1080), cuda, VideoConfig()) is None  # a GPU: full size is fine
    assert hd_hint((1920, 1080), cpu, VideoConfig(dream_scale=0.5)) is None  # already halved


def test_preview_shows_the_last_frame(clip, tmp_path):
    preview, out = tmp_path / "now.png", tmp_path / "o.mp4"
    render_video(fast(encode={"lossless": True}), clip, out, preview=preview)
    frames = frames_of(out)
    shown = np.asarray(Image.open(preview))
    assert len(frames) == 12 and np.array_equal(shown, frames[-1])
    assert not np.array_equal(frames[0], frames[-1])  # the first frame would not pass


@pytest.mark.parametrize(
    "args, message",
    [
        (["video", "{txt}", "-o", "{out}"], "is not a video"),
        (["video", "{clip}", "-o", "{tmp}/o.avi"], "unknown video type '.avi'"),
        (["video", "{clip}", "-o", "{out}", "--resume"], "nothing to resume"),
        (["video", "{clip}", "-o", "{out}", "--flow", "optical"], "'optical' is not one of 'dis'"),
        (["video", "{clip}", "-o", "{out}", "--start", "5", "--end", "1"], "must come after"),
        (["video", "{clip}", "-o", "{out}", "--width", "8"], "video.width: must be >= 16"),
        (["video", "{clip}", "-o", "{out}", "--scale", "0.1"], "too small to follow"),
        (["metrics", "{clip}", "{txt}"], "is not a video"),
        (["video", "{png}", "-o", "{out}"], "is a picture; dream it with `dreamvideo image"),
    ],
)
def test_video_mistakes_are_one_line(tmp_path, clip, args, message):
    txt = tmp_path / "notes.mp4"
    txt.write_text("hello")
    png = tmp_path / "photo.png"
    png.write_bytes(b"")
    fmt = {"txt": txt, "clip": clip, "out": tmp_path / "o.mp4", "tmp": tmp_path, "png": png}
    assert_one_line_error(cli(*[a.format(**fmt) for a in args]), message)
    assert not (tmp_path / "o.mp4").exists() and not parts_dir(tmp_path / "o.mp4").exists()


def test_hold_strength_stops_a_static_shot_from_drifting(tmp_path):
    still = [pan_frames(1, (96, 64))[0]] * 14
    clip = write_clip(tmp_path / "still.mp4", still)
    video = {"blend": 1.0, "next_iterations": 2, "tracked_step": 1.0}
    strengths = {}
    for hold in (True, False):
        out = tmp_path / f"{hold}.mp4"
        render_video(
            fast(dream={"step": 3.0, "iterations": 8}, video={**video, "hold_strength": hold}),
            clip,
            out,
            restart=True,
        )
        m = measure_clip(clip, out)
        strengths[hold] = m.drift
    assert strengths[True] < 1.15
    assert strengths[False] > strengths[True] + 0.15


def test_a_clip_started_later_keeps_its_sound_from_there(tmp_path):
    """A tone that begins 1.5 s into the clip: rendered from --start 1, it begins 0.5 s
    into the dream."""
    from conftest import pan_frames, write_clip

    from dreamvideo.media.ffmpeg import ffmpeg_exe, read_audio

    tone = tmp_path / "tone.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "aevalsrc='if(gt(t,1.5),sin(2*PI*700*t),0)':s=8000:d=3", str(tone)],
                   check=True)  # fmt: skip
    clip = write_clip(tmp_path / "c.mp4", pan_frames(75, (48, 32)), Fraction(25), audio=tone)
    out = tmp_path / "o.mp4"
    render_video(fast(video={"start": 1.0, "max_frames": 25}), clip, out)
    sound = read_audio(out, 8000)
    onset = float(np.argmax(np.abs(sound) > 0.3)) / 8000
    assert abs(onset - 0.5) < 0.03, onset


def test_colour_matching_brings_the_dream_back_to_the_sources_colours(clip, tmp_path):
    plain, matched = tmp_path / "plain.mkv", tmp_path / "matched.mkv"
    strong = {"iterations": 8, "step": 6.0}
    render_video(fast(dream=strong, encode={"codec": "ffv1"}), clip, plain)
    render_video(fast(dream={**strong, "color_match": "source"}, encode={"codec": "ffv1"}),
                 clip, matched)  # fmt: skip
    source = np.stack([f for _, f in read_frames(clip)]).astype(np.float32)

    def colour_gap(path) -> float:  # mean RGB of each frame against the source's
        got = np.stack([f for _, f in read_frames(path)]).astype(np.float32)
        return float(np.abs(got.mean((1, 2)) - source[: len(got)].mean((1, 2))).mean())

    assert colour_gap(matched) < 0.5 * colour_gap(plain)
