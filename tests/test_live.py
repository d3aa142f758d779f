"""Live dreaming (dreamvideo live): a stream sent by ffmpeg in real time over loopback UDP is
dreamed as it plays, served as MJPEG and recorded; Ctrl-C and the end of the source leave a
complete recording."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.request
from fractions import Fraction

import pytest
from conftest import assert_one_line_error, cli, pan_frames, write_clip

from dreamvideo.media.ffmpeg import ffmpeg_exe
from dreamvideo.media.frames import probe_video
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


def test_a_udp_stream_is_dreamed_recorded_and_served_as_it_plays(tmp_path, clip, dreamer):
    port = free_udp_port()
    sender = subprocess.Popen(
        [ffmpeg_exe(), "-v", "error", "-re", "-stream_loop", "2", "-i", clip, "-c", "copy",
         "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    served: dict[str, bytes] = {}

    def fetch(address):  # once the input is open (OpenCV opens one stream at a time)
        taker.start()

        def get():
            time.sleep(2.5)  # the stream is being dreamed by then
            base = f"http://{address[0]}:{address[1]}"
            served["frame"] = urllib.request.urlopen(f"{base}/frame.jpg", timeout=10).read()
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
            load_preset("video-fast"),
            f"udp://127.0.0.1:{port}",
            output=tmp_path / "live.mp4",
            serve=("127.0.0.1", 0),
            stream=f"udp://127.0.0.1:{out_port}",
            seconds=4.0,
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
    assert s.dreamed >= 8 and s.fps > 2 and 0 < s.latency < 2.0, s
    assert r.size == (128, 76)
    info = probe_video(tmp_path / "live.mp4")
    # real time at the target rate: 4 s at 10 frames/s, the dreamed frames held between
    assert info.fps == 10 and abs(info.frame_count - 40) <= 2 and info.frame_count == s.written
    assert served["frame"][:2] == b"\xff\xd8" and b"/stream.mjpg" in served["page"]
    assert b"--frame" in served["stream"] and b"image/jpeg" in served["stream"]
    assert any("dreaming 128x76 live" in h for h in heard)
    taker.join(timeout=20)
    assert pushed and pushed[0] is not None and pushed[0].shape[:2] == (76, 128)


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


def test_live_mistakes_are_one_line(tmp_path, clip):
    assert_one_line_error(cli("live", clip), "--serve PORT, --stream URL and/or -o FILE")
    assert_one_line_error(cli("live", clip, "--stream", "x.mp4"), "--stream 'x.mp4': give")
    assert_one_line_error(cli("live", clip, "--serve", "x:y"), "--serve 'x:y': give a port")
    assert_one_line_error(
        cli("live", str(tmp_path / "nope.mp4"), "-o", tmp_path / "o.mp4"), "no such file"
    )
    assert_one_line_error(cli("live", clip, "-o", tmp_path / "o.mp4", "--fps", "0"), "--fps 0")
