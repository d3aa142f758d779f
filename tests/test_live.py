"""Live dreaming (dreamvideo live): a stream sent by ffmpeg in real time over loopback UDP is
dreamed as it plays, served as MJPEG and recorded; Ctrl-C and the end of the source leave a
complete recording."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from fractions import Fraction

import numpy as np
import pytest
from conftest import assert_one_line_error, cli, pan_frames, write_clip

from dreamvideo.media.ffmpeg import ffmpeg_exe, read_audio
from dreamvideo.media.frames import probe_video, read_frames
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for
from dreamvideo.render.live import run_live


@pytest.fixture(scope="module")
def dreamer():
    return dreamer_for(load_preset("video-fast").dream)


@pytest.fixture()
def clip(tmp_path):
    return write_clip(tmp_path / "pan.mp4", pan_frames(96, (160, 96)), fps=Fraction(24))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# a rising tone: at t seconds it sounds at 200 + 100 t Hz, so a piece of it says when it is
RISING = "aevalsrc=sin(2*PI*(200*t+50*t*t)):s=8000:d=12"
BANDS = 48  # the left columns of each frame tell its number; a mask keeps them undreamed


def tone_time(samples: np.ndarray, rate: int, window: float = 0.25) -> float:
    """When in the rising tone the first ``window`` seconds of ``samples`` were heard."""
    piece = samples[: int(rate * window)]
    crossings = np.count_nonzero(np.diff(np.signbit(piece)))
    return (crossings / (2 * window) - 200.0) / 100.0 - window / 2


def numbered_frames(count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """A pan whose frame k carries k in two grey bands at its left: k mod 24, k // 24."""
    frames = pan_frames(count, size)
    for k, f in enumerate(frames):
        f[:, : BANDS // 2] = round(20 + 200 * (k % 24) / 23)
        f[:, BANDS // 2 : BANDS] = round(20 + 200 * (k // 24) / 11)
    return frames


def frame_number(rgb: np.ndarray, width: int) -> int:
    """The number :func:`numbered_frames` put in ``rgb`` (scaled from ``width`` pixels)."""
    band = BANDS // 2 * rgb.shape[1] / width
    fine, coarse = (rgb[8:-8, round(band * (j + 0.25)) : round(band * (j + 0.75))].mean()
                    for j in (0, 1))  # fmt: skip
    return round((coarse - 20) / 200 * 11) * 24 + round((fine - 20) / 200 * 23)


@pytest.fixture(scope="module")
def numbered(tmp_path_factory):
    """A 12 s clip of numbered frames with the rising tone, and a mask that keeps the
    numbers undreamed."""
    import cv2

    folder = tmp_path_factory.mktemp("numbered")
    tone = folder / "tone.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", RISING, tone], check=True)
    clip = write_clip(
        folder / "numbered.mp4", numbered_frames(288, (160, 90)), Fraction(24), audio=tone
    )
    mask = np.zeros((90, 160), np.uint8)
    mask[:, BANDS + 16 :] = 255  # dreamed on the right; the numbers stay as they came
    cv2.imwrite(str(folder / "mask.png"), mask)
    return clip, folder / "mask.png"


def assert_heard_with_its_picture(recording, least: float) -> None:
    """The recording's sound starts where its first picture is (at least ``least`` s into
    the source) and lasts as long as the picture; the undreamed numbers are flat."""
    info = probe_video(recording)
    sound = read_audio(recording, 8000)
    assert abs(len(sound) / 8000 - info.frame_count / float(info.fps)) < 0.15
    first = next(read_frames(info, 0, 1))[1]
    assert first[8:-8, 4:15].std() < 3  # the mask kept the source there
    shown = frame_number(first, 160) / 24
    assert shown >= least and abs(tone_time(sound, 8000) - shown) < 0.1, shown


def test_a_udp_stream_is_dreamed_recorded_and_served_as_it_plays(tmp_path, numbered, dreamer):
    clip, mask = numbered
    port = free_udp_port()
    sender = subprocess.Popen(
        [ffmpeg_exe(), "-v", "error", "-re", "-i", clip, "-c:v", "libx264", "-preset",
         "ultrafast", "-g", "12", "-c:a", "copy", "-f", "mpegts",
         f"udp://127.0.0.1:{port}?pkt_size=1316"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(2.0)  # joined while it plays, as a stream is
    served: dict[str, bytes] = {}

    def fetch(address):  # the page is up before the stream opens
        taker.start()

        def get():
            base = f"http://{address[0]}:{address[1]}"
            for _ in range(60):  # 503 until the first frame is dreamed
                time.sleep(0.25)
                with contextlib.suppress(urllib.error.HTTPError):
                    served["frame"] = urllib.request.urlopen(f"{base}/frame.jpg", timeout=10).read()
                    break
            served["page"] = urllib.request.urlopen(f"{base}/", timeout=10).read()
            with urllib.request.urlopen(f"{base}/stream.mjpg", timeout=10) as stream:
                served["stream"] = stream.read(4096)

        threading.Thread(target=get, daemon=True).start()

    out_port, pushed = free_udp_port(), []

    def take_pushed():  # what another tool (OBS's media source) would read
        import cv2

        cap = cv2.VideoCapture(f"udp://127.0.0.1:{out_port}")
        ok, frame = cap.read()
        pushed.append(frame if ok else None)
        cap.release()

    taker = threading.Thread(target=take_pushed, daemon=True)
    heard = []
    try:
        r = run_live(
            load_preset("video-fast").override("dream", mask=str(mask)),
            f"udp://127.0.0.1:{port}",
            output=tmp_path / "live.mp4",
            serve=("127.0.0.1", 0),
            stream=f"udp://127.0.0.1:{out_port}",
            frames=24,  # what is measured, not how long it takes on a busy machine
            fps=10.0,
            width=128,
            dreamer=dreamer,
            on_serve=fetch,
            on_stage=heard.append,
        )
    finally:
        sender.kill()
        sender.wait()
    s = r.stats
    assert s.dreamed == 24 and s.fps > 0 and s.latency > 0, s
    assert r.size == (128, 72)
    info = probe_video(tmp_path / "live.mp4")
    # real time at the target rate: 10 frames/s from the first dreamed frame to the end,
    # the dreamed frames held between
    assert info.fps == 10 and info.frame_count == s.written
    assert abs(info.frame_count - 10 * s.seconds) <= 2, (info.frame_count, s.seconds)
    # the stream's sound, from the moment of the first recorded frame, as long as the picture
    assert_heard_with_its_picture(tmp_path / "live.mp4", least=0.5)
    assert served["frame"][:2] == b"\xff\xd8" and b"/stream.mjpg" in served["page"]
    assert b"--frame" in served["stream"] and b"image/jpeg" in served["stream"]
    assert any("dreaming 128x72 live" in h for h in heard)
    taker.join(timeout=20)
    assert pushed and pushed[0] is not None and pushed[0].shape[:2] == (72, 128)


def test_the_budget_lowers_the_steps_then_the_size_when_behind_and_not_on_a_full_dream():
    from dreamvideo.render.clip import clip_steps
    from dreamvideo.render.live import WINDOW, Budget

    cfg = load_preset("video-fast")
    steps = clip_steps(cfg.video, dreamer_for(cfg.dream).params)
    budget = Budget(steps, fps=15.0)
    t = 0.0
    for k in range(3 * WINDOW):  # 5 frames/s, a third of the target
        t += 0.2
        budget.tick(t, fresh=k == 0)
        budget.adjust()
    assert budget.steps.later.iterations < steps.later.iterations
    assert all(n.startswith("behind the 15 frames/s target (5.0)") for n in budget.notes)
    for _ in range(6 * WINDOW):
        t += 0.2
        budget.tick(t, fresh=False)
        budget.adjust()
    assert budget.steps.later.iterations == 1
    assert budget.steps.dream_scale == pytest.approx(steps.dream_scale * 0.5)  # the floor
    calm = Budget(steps, fps=15.0)
    for _ in range(2 * WINDOW):  # slow only because every frame is a full dream
        t += 0.2
        calm.tick(t, fresh=True)
        assert calm.adjust() is None


def test_ctrl_c_leaves_a_complete_recording(tmp_path, clip, dreamer, monkeypatch):
    import dreamvideo.render.live as live

    monkeypatch.setattr(live, "REPORT_EVERY", 0.0)

    def press_ctrl_c(stats):
        if stats.dreamed >= 6:
            raise KeyboardInterrupt

    r = run_live(load_preset("video-fast"), clip, output=tmp_path / "cut.mp4", fps=8.0,
                 width=96, dreamer=dreamer, on_stats=press_ctrl_c)  # fmt: skip
    assert "stopped with Ctrl-C" in r.notes
    info = probe_video(tmp_path / "cut.mp4")
    assert info.frame_count == r.stats.written >= 1
    assert not list(tmp_path.glob(".cut*"))  # no temporary file left


def test_the_end_of_a_clip_ends_the_run_and_every_frame_is_dreamed(tmp_path, dreamer):
    clip = write_clip(tmp_path / "short.mp4", pan_frames(12, (96, 64)))
    r = run_live(load_preset("video-fast"), clip, output=tmp_path / "all.mp4", fps=12.0,
                 width=0, realtime=False, dreamer=dreamer)  # fmt: skip
    assert r.stats.dreamed == 12 and r.stats.dropped == 0 and r.size == (96, 64)
    assert probe_video(tmp_path / "all.mp4").frame_count == r.stats.written


def test_a_clips_sound_and_a_mask_go_into_a_live_recording(tmp_path, numbered):
    clip, mask = numbered
    out = tmp_path / "clip.mov"
    r = cli("live", clip, "-o", out, "--frames", "12", "--width", "128", "--fps", "10",
            "--mask", mask, "--iterations", "2")  # fmt: skip
    assert r.code == 0, r.output
    assert f"wrote {out}" in r.output
    assert_heard_with_its_picture(out, least=0.0)


def test_live_mistakes_are_one_line(tmp_path, clip):
    assert_one_line_error(cli("live", clip), "--serve PORT, --stream URL and/or -o FILE")
    assert_one_line_error(cli("live", clip, "--stream", "x.mp4"), "--stream 'x.mp4': give")
    assert_one_line_error(cli("live", clip, "--serve", "x:y"), "--serve 'x:y': give a port")
    assert_one_line_error(
        cli("live", str(tmp_path / "nope.mp4"), "-o", tmp_path / "o.mp4"), "no such file"
    )
    assert_one_line_error(cli("live", clip, "-o", tmp_path / "o.mp4", "--fps", "0"), "--fps 0")
    assert_one_line_error(cli("live", clip, "-o", tmp_path / "o.mp4", "--fps", "nan"), "--fps nan")
    assert_one_line_error(
        cli("live", clip, "-o", tmp_path / "o.mp4", "--seconds", "inf"), "--seconds inf: give"
    )


def test_the_reader_hands_over_the_newest_frame_and_drops_the_rest(numbered):
    """A clip played at its own rate (24 fps) while nobody takes a frame: what is taken then
    is the frame read last, not the first one waiting, and every one between was dropped."""
    from dreamvideo.media.live import Latest

    clip, _ = numbered
    reader = Latest(str(clip), paced=True)
    try:
        first = reader.take()
        assert first is not None and frame_number(first.rgb, 160) == first.index - 1 == 0
        time.sleep(1.0)  # about 24 frames come and go
        read_before = reader.read
        got = reader.take()
        assert got is not None and got.index >= read_before > 10
        assert frame_number(got.rgb, 160) == got.index - 1  # its own picture, the newest
        assert reader.dropped >= got.index - 2  # all between the two taken were dropped
    finally:
        reader.close()
