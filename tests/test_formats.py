"""Every format in, every format out: each input is made with the bundled ffmpeg from a photo
pan, rendered without dreaming (an identity render), and the output decoded and compared with
ffmpeg's own correct conversion of the source (mean CIE76 colour difference in LAB)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_one_line_error, cli, pan_frames, write_clip

from dreamvideo.config import Config
from dreamvideo.errors import UserError
from dreamvideo.media.codecs import choose_encoding
from dreamvideo.media.ffmpeg import count_frames, describe, ffmpeg_exe, raw_frames
from dreamvideo.media.frames import probe_video, read_frames
from dreamvideo.media.probe import parse_description
from dreamvideo.media.sequence import natural_key, read_frame, write_frame
from dreamvideo.render.clip import render_video
from dreamvideo.render.network import dreamer_for

W, H = 64, 36
IDENTITY = {
    "dream": {"layers": "blocks.1", "octaves": 1, "iterations": 0},
    "video": {"next_iterations": 0, "checkpoint_every": 4},
    "encode": {"preset": "ultrafast", "crf": 10},
}
MAX_DELTA_E = 3.0  # mean CIE76 difference of an identity render from the correct conversion


def identity(**sections) -> Config:
    data = {k: {**v, **sections.get(k, {})} for k, v in IDENTITY.items()}
    return Config.from_dict({**data, **{k: v for k, v in sections.items() if k not in data}})


@pytest.fixture(scope="module")
def dreamer():
    return dreamer_for(identity().dream)


def ffmpeg(*args: object) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True, timeout=120)


@pytest.fixture(scope="module")
def pan(tmp_path_factory) -> Path:
    """A lossless photo pan at 50 fps (2 s) with a 440 Hz sound: the raw material."""
    folder = tmp_path_factory.mktemp("pan")
    frames = pan_frames(100, (W, H), step=(0.5, 0.25))
    return Path(write_clip(folder / "pan.mkv", frames, Fraction(50), audio=True, lossless=True))


# how a player shows them, written out here (not taken from the code under test)
DEINTERLACE = "bwdif=mode=send_frame:parity=auto:deint=all"
TO_SDR = ("zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=mobius,"
          "zscale=t=bt709:m=bt709:r=pc")  # fmt: skip


def reference(source: Path, filters: str) -> list[np.ndarray]:
    """ffmpeg's own conversion of ``source`` with ``filters`` (what a player applies), to RGB
    at the source's size."""
    info = probe_video(source)
    args = ["-i", str(source), "-map", "0:v:0", "-vf", f"{filters},setsar=1",
            "-pix_fmt", "rgb24"]  # fmt: skip
    frames = raw_frames(args, info.width * info.height * 3, "reference")
    return [np.frombuffer(f, np.uint8).reshape(info.height, info.width, 3) for f in frames]


def frames_of(path, **kw) -> list[np.ndarray]:
    return [f for _, f in read_frames(path, **kw)]


def delta_e(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Mean CIE76 colour difference between two lists of RGB frames (8-bit)."""

    def lab(rgb):
        x = cv2.cvtColor(rgb[..., :3], cv2.COLOR_RGB2LAB).astype(np.float32)
        return x * np.float32([100 / 255, 1, 1]) - np.float32([0, 128, 128])

    assert len(a) == len(b), (len(a), len(b))
    return float(
        np.mean(
            [np.linalg.norm(lab(x) - lab(y), axis=-1).mean() for x, y in zip(a, b, strict=True)]
        )
    )


def streams(path: Path):
    return parse_description(describe(path))


# ------------------------------------------------------------------ clips in


@pytest.fixture(scope="module")
def sources(pan, tmp_path_factory) -> dict[str, Path]:
    """The inputs people shoot, made from the pan."""
    d = tmp_path_factory.mktemp("sources")
    made = {}
    made["interlaced.mp4"] = d / "interlaced.mp4"
    ffmpeg(
        "-i",
        pan,
        "-vf",
        "tinterlace=mode=interleave_top,setfield=tff",
        "-c:v",
        "libx264",
        "-flags",
        "+ildct+ilme",
        "-x264opts",
        "tff=1",
        "-crf",
        "8",
        made["interlaced.mp4"],
    )
    made["dvd.mpg"] = d / "dvd.mpg"
    ffmpeg(
        "-i",
        pan,
        "-vf",
        "tinterlace=mode=interleave_top,setfield=tff",
        "-c:v",
        "mpeg2video",
        "-flags",
        "+ildct+ilme",
        "-field_order",
        "tt",
        "-q:v",
        "2",
        made["dvd.mpg"],
    )
    for name, curve in (("hlg.mp4", "arib-std-b67"), ("pq.mp4", "smpte2084")):
        made[name] = d / name
        ffmpeg(
            "-i",
            pan,
            "-vf",
            f"zscale=tin=bt709:pin=bt709:min=bt709:rin=pc:t={curve}:"
            "p=bt2020:m=bt2020nc:r=tv:npl=100,format=yuv420p10le",
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error:lossless=1",
            made[name],
        )
    made["vfr.mp4"] = d / "vfr.mp4"  # a phone's: frames at 50 fps, then 25, then 50
    ffmpeg(
        "-i",
        pan,
        "-vf",
        "select='not(between(n,30,69)*mod(n,2))'",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "libx264",
        "-crf",
        "8",
        "-c:a",
        "aac",
        made["vfr.mp4"],
    )
    made["anamorphic.mp4"] = d / "anamorphic.mp4"  # 16:9 stored in 4:3 pixels, SAR 4:3
    ffmpeg(
        "-i",
        pan,
        "-vf",
        f"scale={W * 3 // 4}:{H},setsar=4/3",
        "-c:v",
        "libx264",
        "-crf",
        "8",
        made["anamorphic.mp4"],
    )
    made["alpha.mov"] = d / "alpha.mov"
    ffmpeg(
        "-i",
        pan,
        "-vf",
        "format=yuva444p10le,geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='X*1023/W'",
        "-c:v",
        "prores_ks",
        "-profile:v",
        "4",
        made["alpha.mov"],
    )
    made["alpha.webm"] = d / "alpha.webm"
    ffmpeg(
        "-i",
        pan,
        "-vf",
        "format=yuva420p,geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='X*255/W'",
        "-c:v",
        "libvpx-vp9",
        "-crf",
        "4",
        "-b:v",
        "0",
        made["alpha.webm"],
    )
    made["anim.gif"] = d / "anim.gif"
    ffmpeg("-i", pan, "-r", "25", made["anim.gif"])
    srt = d / "words.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n\n2\n00:00:01,000 --> 00:00:02,0"
                   "00\nworld\n")  # fmt: skip
    made["tracks.mkv"] = d / "tracks.mkv"
    ffmpeg(
        "-i",
        pan,
        "-f",
        "lavfi",
        "-i",
        "sine=f=660:d=2",
        "-i",
        srt,
        "-map",
        "0:v",
        "-map",
        "0:a",
        "-map",
        "1:a",
        "-map",
        "2",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        "-c:s",
        "srt",
        made["tracks.mkv"],
    )
    return made  # fmt: skip


@pytest.mark.parametrize("name", ["interlaced.mp4", "dvd.mpg"])
def test_interlaced_footage_is_deinterlaced_not_black(sources, dreamer, tmp_path, name):
    out = tmp_path / "out.mp4"
    said = []
    r = render_video(identity(), sources[name], out, dreamer=dreamer, on_stage=said.append)
    got, ref = frames_of(out), reference(sources[name], DEINTERLACE)
    assert r.frames == len(ref) == 50 and min(f.mean() for f in got) > 40  # black was ~2
    assert delta_e(got, ref) < MAX_DELTA_E
    assert any("interlaced (top first): deinterlaced with bwdif" in s for s in said)


def test_interlaced_fields_that_differ_are_deinterlaced_not_woven(pan, dreamer, tmp_path):
    """A fast pan, interlaced: its two fields show pictures 8 px apart, so a frame woven
    from them is combed; deinterlaced, it is the field's own picture, as a player shows it."""
    fast_pan = tmp_path / "fast.mkv"
    write_clip(fast_pan, pan_frames(40, (W, H), step=(8.0, 0.0)), Fraction(50), lossless=True)
    combed = tmp_path / "combed.mp4"
    ffmpeg("-i", fast_pan, "-vf", "tinterlace=mode=interleave_top,setfield=tff",
           "-c:v", "libx264", "-flags", "+ildct+ilme", "-x264opts", "tff=1", "-crf", "8",
           combed)  # fmt: skip
    out = tmp_path / "out.mp4"
    render_video(identity(), combed, out, dreamer=dreamer)
    got = frames_of(out)
    woven = reference(combed, "null")
    assert delta_e(woven, reference(combed, DEINTERLACE)) > 2 * MAX_DELTA_E  # fields differ
    assert delta_e(got, reference(combed, DEINTERLACE)) < MAX_DELTA_E


# patches of a colour chart (RGB), 16x18 pixels each so that 4:2:0 chroma does not blur them
CHART = [(50, 50, 50), (200, 200, 200), (220, 30, 30), (30, 200, 40), (30, 40, 220),
         (230, 220, 30), (40, 210, 220), (210, 40, 200)]  # fmt: skip


def chart_patches(frame: np.ndarray) -> np.ndarray:
    """The mean colour (8, 3) of the centre 6x6 pixels of each patch."""
    centres = [(r * 18 + 9, c * 16 + 8) for r, c in (divmod(i, 4) for i in range(len(CHART)))]
    return np.array([frame[y - 3 : y + 3, x - 3 : x + 3].reshape(-1, 3).mean(0)
                     for y, x in centres])  # fmt: skip


@pytest.mark.parametrize(
    "name, tags",
    [
        ("full range (yuvj)", ["-pix_fmt", "yuvj420p", "-color_range", "pc"]),
        ("BT.601", ["-vf", "scale=out_color_matrix=bt601", "-colorspace", "smpte170m",
                    "-color_primaries", "smpte170m", "-color_trc", "smpte170m"]),
        ("BT.709", ["-vf", "scale=out_color_matrix=bt709", "-colorspace", "bt709",
                    "-color_primaries", "bt709", "-color_trc", "bt709"]),
    ],
)  # fmt: skip
def test_levels_and_colour_matrices_are_kept(dreamer, tmp_path, name, tags):
    """A full-range clip read as limited, or BT.601 as BT.709, moves these patches by a CIE76
    difference of 12 to 13; kept, they move by under 3 (two 4:2:0 encodes)."""
    frame = np.zeros((H, W, 3), np.uint8)
    for i, colour in enumerate(CHART):
        r, c = divmod(i, 4)
        frame[r * 18 : (r + 1) * 18, c * 16 : (c + 1) * 16] = colour
    chart = write_clip(tmp_path / "chart.mkv", [frame] * 5, Fraction(25), lossless=True)
    source, out = tmp_path / "source.mp4", tmp_path / "out.mp4"
    ffmpeg("-i", chart, *tags, "-c:v", "libx264", "-crf", "8", source)
    render_video(identity(), source, out, dreamer=dreamer)
    pair = np.uint8([chart_patches(frame), chart_patches(frames_of(out)[-1])])
    lab = cv2.cvtColor(pair, cv2.COLOR_RGB2LAB).astype(np.float32) * np.float32([100 / 255, 1, 1])
    assert np.linalg.norm(lab[0] - lab[1], axis=-1).max() < 4.0
    v = streams(out).video
    assert (v.matrix, v.primaries, v.transfer, v.range) == ("bt709", "bt709", "bt709", "tv")


@pytest.mark.parametrize("name", ["hlg.mp4", "pq.mp4"])
def test_hdr_is_dreamed_in_sdr_as_ffmpeg_converts_it_or_kept(sources, dreamer, tmp_path, name):
    out = tmp_path / "sdr.mp4"
    render_video(identity(), sources[name], out, dreamer=dreamer)
    got, ref = frames_of(out), reference(sources[name], TO_SDR)
    assert delta_e(got, ref) < MAX_DELTA_E
    # the source was made from an SDR pan: its SDR view comes back close to that pan, much
    # closer than the HDR signal shown as if it were SDR
    original = pan_frames(100, (W, H), step=(0.5, 0.25))
    signal_as_is = frames_of(sources[name], hdr="keep")
    assert delta_e(got, original) < min(6.0, delta_e(signal_as_is, original))
    kept = tmp_path / "hdr.mp4"
    render_video(identity(encode={"codec": "h265", "hdr": "keep"}), sources[name], kept,
                 dreamer=dreamer)  # fmt: skip
    v = streams(kept).video
    assert (v.codec, v.depth, v.primaries, v.transfer) == (
        "hevc",
        10,
        "bt2020",
        {"hlg.mp4": "arib-std-b67", "pq.mp4": "smpte2084"}[name],
    )
    with pytest.raises(UserError, match="encode.hdr keep needs 10 bits"):
        render_video(identity(encode={"hdr": "keep", "codec": "h264"}), sources[name],
                     tmp_path / "x.mp4", dreamer=dreamer)  # fmt: skip
    said = []  # without a codec asked for, the one that keeps it
    render_video(identity(encode={"hdr": "keep"}), sources[name], tmp_path / "auto.mp4",
                 dreamer=dreamer, on_stage=said.append)  # fmt: skip
    assert streams(tmp_path / "auto.mp4").video.codec == "hevc"
    assert any("HDR kept: written as H.265/HEVC in 10 bits" in s for s in said), said


def test_a_variable_frame_rate_keeps_its_timing_and_its_sound_in_sync(sources, dreamer, tmp_path):
    src = probe_video(sources["vfr.mp4"])
    assert src.vfr and src.fps == 50 and src.reader == "ffmpeg"
    out = tmp_path / "out.mp4"
    said = []
    r = render_video(identity(), sources["vfr.mp4"], out, dreamer=dreamer, on_stage=said.append)
    info = probe_video(out)
    assert not info.vfr and info.fps == 50 and info.has_audio
    assert abs(r.frames / 50 - src.duration) <= 1 / 50 + 1e-6  # as long as the source
    assert abs(info.duration - src.duration) < 0.05
    assert any("uneven times (a variable rate, or timestamps that jitter): rendered at a "
               "constant 50.000 fps" in s for s in said)  # fmt: skip


def test_non_square_pixels_are_dreamed_at_the_display_aspect(sources, dreamer, tmp_path):
    out = tmp_path / "out.mp4"
    render_video(identity(), sources["anamorphic.mp4"], out, dreamer=dreamer)
    info = probe_video(out)
    assert (info.width, info.height) == (W, H) and streams(out).video.sar == 1


def test_a_phones_recorded_rotation_is_applied(pan, dreamer, tmp_path):
    stored = tmp_path / "stored.mp4"
    ffmpeg("-i", pan, "-t", "0.4", "-c:v", "libx264", "-crf", "8", "-an", stored)
    turned = tmp_path / "turned.mp4"  # the same frames, shown turned 90° counter-clockwise
    ffmpeg("-display_rotation", "90", "-i", stored, "-c", "copy", turned)
    info = probe_video(turned)
    assert (info.width, info.height, info.rotation) == (H, W, 270)  # 270° clockwise
    out = tmp_path / "out.mp4"
    render_video(identity(), turned, out, dreamer=dreamer)
    got, upright = frames_of(out), [np.rot90(f) for f in frames_of(stored)]
    assert got[0].shape == (W, H, 3) and delta_e(got, upright) < MAX_DELTA_E
    assert delta_e(got, [np.rot90(f, -1) for f in frames_of(stored)]) > 3 * MAX_DELTA_E


def test_alpha_passes_through_where_the_output_holds_it(sources, dreamer, tmp_path):
    for name, out_name, codec in (("alpha.mov", "out.mov", "prores4444"),
                                  ("alpha.webm", "out.webm", "auto")):  # fmt: skip
        out = tmp_path / out_name
        render_video(identity(encode={"codec": codec}), sources[name], out, dreamer=dreamer)
        a = [f[..., 3].astype(int) for f in frames_of(sources[name], alpha=True)]
        b = [f[..., 3].astype(int) for f in frames_of(out, alpha=True)]
        assert len(a) == len(b) == 100 and b[0].min() < 40 and b[0].max() > 215  # a ramp
        assert max(np.abs(x - y).mean() for x, y in zip(a, b, strict=True)) < 2
    said = []
    render_video(identity(), sources["alpha.mov"], tmp_path / "flat.mp4", dreamer=dreamer,
                 on_stage=said.append)  # fmt: skip
    assert any("alpha is left out: H.264 has no alpha" in s for s in said)


def test_every_sound_track_and_subtitle_is_kept(sources, dreamer, tmp_path):
    for suffix, sound, subs in ((".mkv", "aac", "subrip"), (".mp4", "aac", "mov_text"),
                                (".webm", "opus", "webvtt")):  # fmt: skip
        out = tmp_path / f"out{suffix}"
        render_video(identity(), sources["tracks.mkv"], out, dreamer=dreamer)
        text = describe(out)
        assert text.count(f"Audio: {sound}") == 2 and f"Subtitle: {subs}" in text, text


def test_an_animated_gif_is_read_at_its_rate(sources):
    info = probe_video(sources["anim.gif"])
    assert info.fps == 25 and len(frames_of(info)) == count_frames(sources["anim.gif"])


def test_a_decoder_that_hands_back_wrong_frames_is_not_trusted(pan, monkeypatch):
    """OpenCV reads this clip; made to decode it black, its first frame differs from
    ffmpeg's, and ffmpeg reads the clip instead (black frames never reach a render)."""
    import dreamvideo.media.frames as frames

    assert probe_video(pan).reader == "opencv"

    real = cv2.VideoCapture

    class Black:  # wraps rather than subclasses: a garbage-collected subclass crashes cv2
        def __init__(self, *args):
            self._cap = real(*args)

        def __getattr__(self, name):
            return getattr(self._cap, name)

        def read(self):
            ok, f = self._cap.read()
            return ok, None if f is None else np.zeros_like(f)

    monkeypatch.setattr(frames.cv2, "VideoCapture", Black)
    info = probe_video(pan)
    assert info.reader == "ffmpeg" and frames_of(info)[0].mean() > 40


# ------------------------------------------------------------------ frame folders


@pytest.fixture()
def folder16(tmp_path) -> Path:
    """A folder of 16-bit PNG frames, numbered 1..8 (frame_2 before frame_10 is checked by
    the natural sort), whose tones need more than 8 bits."""
    d = tmp_path / "frames16"
    d.mkdir()
    ramp = np.linspace(0, 65535, W, dtype=np.float64)
    for k in range(1, 9):
        frame = np.broadcast_to((ramp + 31 * k)[None, :, None], (H, W, 3)).clip(0, 65535)
        write_frame(d / f"frame_{k}.png", frame.astype(np.uint16))
    return d


def test_frames_are_sorted_naturally():
    names = [Path(f"f_{k}.png") for k in (10, 2, 1, 33, 3)]
    assert [p.stem for p in sorted(names, key=natural_key)] == ["f_1", "f_2", "f_3", "f_10", "f_33"]


@pytest.mark.parametrize("spelling", ["{d}", "{d}/frame_%d.png", "{d}/*.png"])
def test_a_frame_folder_in_any_spelling_is_a_clip(folder16, spelling):
    info = probe_video(spelling.format(d=folder16))
    assert (info.reader, info.frame_count, info.fps, info.depth) == ("frames", 8, 24, 16)
    assert [p.name for p in info.files][:3] == ["frame_1.png", "frame_2.png", "frame_3.png"]


def test_sixteen_bit_frames_come_out_with_more_than_eight_bits(folder16, dreamer, tmp_path):
    out = tmp_path / "out" / "dream_%04d.png"
    said = []
    render_video(identity(video={"fps": 12}), folder16, out, dreamer=dreamer,
                 on_stage=said.append)  # fmt: skip
    written = sorted(out.parent.glob("dream_*.png"))
    assert [p.name for p in written][0] == "dream_0001.png" and len(written) == 8  # numbers kept
    frame = read_frame(written[0])
    source = read_frame(folder16 / "frame_1.png").astype(int)
    # the tones between 8-bit steps survive (8-bit frames would be multiples of 257)
    assert frame.dtype == np.uint16 and np.any(frame % 257)
    assert np.abs(frame.astype(int) - source).max() <= 2
    settings = json.loads((out.parent / "dream_settings.json").read_text())
    assert settings["frames"] == 8 and settings["fps"] == "12"


def test_a_gap_a_stray_size_or_a_broken_frame_is_one_line(folder16):
    (folder16 / "frame_5.png").rename(folder16 / "gone.txt")
    with pytest.raises(UserError, match="frame 5 is missing: the numbering jumps from"):
        probe_video(folder16)
    (folder16 / "gone.txt").rename(folder16 / "frame_5.png")
    write_frame(folder16 / "frame_6.png", np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(UserError, match=r"frame_6.png is 64x38 where the frames before are 64x36"):
        probe_video(folder16)
    (folder16 / "frame_6.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(UserError, match="frame_6.png cannot be read"):
        probe_video(folder16)


def test_exr_frames_in_and_out_keep_linear_light(tmp_path, dreamer):
    pytest.importorskip("OpenEXR")
    d = tmp_path / "shots"
    d.mkdir()
    linear = np.linspace(0.01, 0.9, W * H * 3, dtype=np.float32).reshape(H, W, 3)
    for k in range(1, 5):
        write_frame(
            d / f"shot_{k:03d}.exr",
            np.float32(
                np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
            ),
        )
    out = tmp_path / "out" / "dream_%03d.exr"
    render_video(identity(), str(d / "*.exr"), out, dreamer=dreamer)
    back = read_frame(out.parent / "dream_001.exr")
    assert back.dtype == np.float32 and np.abs(back - linear).max() < 2e-3


def test_a_frame_render_resumes_and_restart_removes_only_its_own_frames(pan, dreamer, tmp_path):
    out = tmp_path / "out" / "f_%03d.png"
    out.parent.mkdir()
    mine = out.parent / "notes.txt"
    mine.write_text("the user's")
    cfg = identity(video={"max_frames": 10})
    with pytest.raises(KeyboardInterrupt):
        render_video(cfg, pan, out, dreamer=dreamer, on_frame=_stop_at(6))
    r = render_video(cfg, pan, out, dreamer=dreamer, resume=True)
    assert r.resumed_from == 4 and len(list(out.parent.glob("f_*.png"))) == 10
    ref = tmp_path / "ref" / "f_%03d.png"
    render_video(cfg, pan, ref, dreamer=dreamer)
    for k in range(10):
        assert np.array_equal(read_frame(out.parent / f"f_{k:03d}.png"),
                              read_frame(ref.parent / f"f_{k:03d}.png"))  # fmt: skip
    # a second render over it stops after writing frames 0-5; --restart removes those
    # (the frames it wrote, listed in its parts), not the earlier render's nor the user's
    with pytest.raises(KeyboardInterrupt):
        render_video(cfg, pan, out, dreamer=dreamer, on_frame=_stop_at(6), overwrite=True)
    with pytest.raises(UserError, match="holds an unfinished render"):
        render_video(cfg, pan, out, dreamer=dreamer, overwrite=True)
    with pytest.raises(KeyboardInterrupt):
        render_video(cfg, pan, out, dreamer=dreamer, restart=True, overwrite=True,
                     on_frame=_stop_at(1))  # fmt: skip
    left = sorted(p.name for p in out.parent.iterdir())
    assert left == ["f_006.png", "f_007.png", "f_008.png", "f_009.png", "f_settings.json",
                    "notes.txt"]  # fmt: skip


def _stop_at(done: int):
    def on_frame(report):
        if report.done == done:
            raise KeyboardInterrupt

    return on_frame


def test_the_sound_goes_beside_the_frames_when_asked(pan, dreamer, tmp_path):
    out = tmp_path / "f_%02d.png"
    render_video(identity(encode={"sound_file": "wav"}, video={"max_frames": 10}), pan, out,
                 dreamer=dreamer)  # fmt: skip
    sound = tmp_path / "f_sound.wav"
    assert sound.is_file() and "Audio: pcm_s16le" in describe(sound)
    assert abs(parse_description(describe(sound)).duration - 10 / 50) < 0.03


# ------------------------------------------------------------------ files out


@pytest.mark.parametrize(
    "name, codec, holds",
    [
        ("out.mov", "prores", "prores"),
        ("out.mkv", "ffv1", "ffv1"),
        ("out.webm", "auto", "vp9"),
        ("out.mkv", "av1", "av1"),
        ("out.mp4", "h265", "hevc"),
        ("out.webp", "auto", "webp"),
        ("out.apng", "auto", "apng"),
        ("out.gif", "auto", "gif"),
    ],
)
def test_codecs_and_containers_by_name(pan, dreamer, tmp_path, name, codec, holds):
    out = tmp_path / name
    cfg = identity(encode={"codec": codec}, video={"max_frames": 10})
    r = render_video(cfg, pan, out, dreamer=dreamer)
    v = streams(out).video
    assert v.codec.startswith(holds) and r.frames == 10 == len(frames_of(out))
    if holds not in ("gif", "webp", "apng", "ffv1"):  # RGB files carry no YUV tags
        assert (v.matrix, v.primaries, v.transfer, v.range) == ("bt709",) * 3 + ("tv",)


def test_a_looped_zoom_gif_plays_on_repeat_without_a_jump(tmp_path):
    out = tmp_path / "loop.gif"
    r = cli("zoom", "-o", out, "--loop", "--seconds", 1, "--width", 48, "--height", 48,
            "--iterations", 1, "--set", "dream.iterations=2", "--set", "dream.octaves=1",
            "--set", "dream.layers=blocks.3")  # fmt: skip
    assert r.code == 0, r.output
    frames = [f.astype(np.float32) for f in frames_of(out)]
    steps = [np.abs(b - a).mean() for a, b in zip(frames, frames[1:], strict=False)]
    closing = np.abs(frames[0] - frames[-1]).mean()
    assert len(frames) == 24 and min(steps) <= closing <= max(steps) * 1.25
    assert b"NETSCAPE2.0" in out.read_bytes()  # the loop flag


def test_bad_combinations_are_one_line_that_says_what_works(pan, tmp_path):
    assert_one_line_error(
        cli("video", pan, "-o", tmp_path / "x.mp4", "--codec", "prores"),
        "ProRes 422 HQ does not go into .mp4 files; .mp4 takes h264, h265, av1",
    )
    # a picture's name, a name without a suffix or a folder: say how frames are written
    for name in ("x.png", "frames", "."):
        assert_one_line_error(
            cli("video", pan, "-o", tmp_path / name),
            "or numbered frames with a printf pattern such as",
        )
    assert_one_line_error(cli("video", pan, "-o", tmp_path / "x.png"), "x_%04d.png")
    assert_one_line_error(cli("video", pan, "-o", tmp_path / "f_%d.png", "--codec", "h264"),
                          "encode.codec h264 is for video files")  # fmt: skip
    assert_one_line_error(cli("video", pan, "-o", tmp_path / "x.mp4", "--fps", 12),
                          "video.fps / --fps is for frame folders")  # fmt: skip
    enc = choose_encoding(".gif", "auto", (W, H), sound=True)
    assert enc.notes == ("the sound is left out: animated GIF holds no sound",)


def test_an_ffmpeg_without_the_codecs_encoder_is_one_line_before_any_work(
    pan, tmp_path, monkeypatch
):
    """IMAGEIO_FFMPEG_EXE names an ffmpeg built without SVT-AV1: --codec av1 is refused
    before the network loads, naming the encoder; what that ffmpeg has still works."""
    fake = tmp_path / "ffmpeg"
    fake.write_text(f"""#!/bin/sh
case " $* " in *" -encoders "*) '{ffmpeg_exe()}' "$@" | grep -v libsvtav1; exit 0;; esac
exec '{ffmpeg_exe()}' "$@"
""")
    fake.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake))
    r = cli("video", pan, "-o", tmp_path / "x.mp4", "--codec", "av1")
    assert_one_line_error(r, f"the ffmpeg in use ({fake}) has no libsvtav1 encoder for AV1")
    assert "loading" not in r.output and not (tmp_path / "x.mp4.parts").exists()
    fast = ["--set", "dream.octaves=1", "--set", "dream.iterations=1"]
    assert cli("video", pan, "-o", tmp_path / "x.mp4", "--codec", "h265", *fast).code == 0


# ------------------------------------------------------------------ signals


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_a_render_as_ctrl_c_does(tmp_path, sig, code):
    clip = write_clip(tmp_path / "c.mp4", pan_frames(60, (320, 192)))
    out = tmp_path / "o.mp4"
    child = subprocess.Popen(
        [sys.executable, "-m", "dreamvideo", "video", clip, "-o", out, "--octaves", "1",
         "--iterations", "1", "--set", "video.next_iterations=0", "--checkpoint-every", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    manifest = out.with_name(out.name + ".parts") / "manifest.json"
    for _ in range(600):
        try:
            if json.loads(manifest.read_text())["segments"]:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    os.kill(child.pid, sig)
    _, err = child.communicate(timeout=120)
    assert child.returncode == code, err
    assert "finished frames are kept in" in err.strip().splitlines()[-1]


def test_sigterm_before_the_first_checkpoint_leaves_no_parts(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", pan_frames(60, (320, 192)))
    out = tmp_path / "o.mp4"
    child = subprocess.Popen(
        [sys.executable, "-m", "dreamvideo", "video", clip, "-o", out, "--octaves", "1",
         "--iterations", "1", "--checkpoint-every", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    parts = out.with_name(out.name + ".parts")
    for _ in range(600):  # until the render has begun writing
        if (parts / "manifest.json").exists() or list(parts.glob("*.mp4")):
            break
        time.sleep(0.05)
    assert parts.is_dir()
    os.kill(child.pid, signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143, err
    assert not parts.exists() and not out.exists()
