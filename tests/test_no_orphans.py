"""No ffmpeg outlives dreamvideo, however it ends (Ctrl-C, SIGTERM, SIGKILL), and a live run
keeps what it recorded when it is stopped, when its stream goes quiet, and when the signal
reaches every process of its session (a closed terminal, a service manager's stop)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import pan_frames, write_clip

from dreamvideo.media.ffmpeg import count_frames, ffmpeg_exe

TINY = ["--iterations", "1", "--set", "dream.octaves=1", "--set", "dream.layers=blocks.3"]
GONE_WITHIN = 5.0  # seconds after the parent ends


def named(sig: signal.Signals) -> str:
    return sig.name


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (their pids)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid):
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting to be reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def ffmpegs_of(pid: int) -> list[int]:
    out = []
    for child in children_of(pid):
        try:
            if "ffmpeg" in Path(f"/proc/{child}/comm").read_text():
                out.append(child)
        except OSError:
            continue
    return out


def session_of(sid: int) -> list[int]:
    """Every process of session ``sid``."""
    found = []
    for pid in (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()):
        try:
            if os.getsid(pid) == sid:
                found.append(pid)
        except OSError:
            continue
    return found


class Run(subprocess.Popen):
    """``dreamvideo ARGS`` in a session of its own (as a terminal or a service gives), its
    stderr read as it comes (:attr:`said`)."""

    def __init__(self, args: list[object], cwd: Path) -> None:
        super().__init__(
            [sys.executable, "-m", "dreamvideo", *map(str, args)],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.said: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.stderr is not None
        for line in self.stderr:
            self.said.append(line)

    def end(self, timeout: float = 60) -> str:
        """Wait for it to end; all it said."""
        self.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return "".join(self.said)


def start(args: list[object], cwd: Path) -> Run:
    return Run(args, cwd)


def encoding(pid: int) -> bool:
    """Whether ``pid`` is an ffmpeg that encodes frames it is fed (reads its stdin)."""
    try:
        return b"\0-i\0-\0" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def wait_for_ffmpeg(
    proc: subprocess.Popen, least: int = 1, timeout: float = 90.0, encoder: bool = False
) -> list[int]:
    """The ffmpeg children of ``proc`` once it has ``least`` of them at once (and, with
    ``encoder``, one of them encoding: the render's frames are being written)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        found = ffmpegs_of(proc.pid)
        if len(found) >= least and (not encoder or any(encoding(p) for p in found)):
            return found
        if proc.poll() is not None:
            raise AssertionError(f"ended before starting ffmpeg: {proc.end()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no ffmpeg child appeared")


def wait_until(ready, timeout: float = 90.0) -> None:
    t0 = time.monotonic()
    while not ready():
        assert time.monotonic() - t0 < timeout, "it did not come"
        time.sleep(0.05)


def assert_gone(pids: list[int]) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < GONE_WITHIN and any(alive(p) for p in pids):
        time.sleep(0.1)
    left = [p for p in pids if alive(p)]
    assert not left, f"ffmpeg left running: {left}"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("orphans")
    return Path(write_clip(folder / "pan.mp4", pan_frames(720, (96, 64)), Fraction(24),
                           audio=True))  # fmt: skip


def sender(clip: Path, port: int, gop: int = 24, loop: bool = True) -> subprocess.Popen:
    """``clip`` sent as it plays to loopback UDP, as a camera or OBS would send it."""
    return subprocess.Popen(
        [ffmpeg_exe(), "-v", "error", "-re", *(["-stream_loop", "-1"] if loop else []),
         "-i", str(clip), "-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop),
         "-c:a", "aac", "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def commands(clip: Path, tmp: Path, port: int) -> dict[str, list[object]]:
    return {
        "video": ["video", clip, "-o", tmp / "v.mp4", *TINY],
        "zoom": [
            "zoom",
            "-o",
            tmp / "z.mp4",
            "--seconds",
            30,
            "--width",
            64,
            "--height",
            64,
            *TINY,
        ],  # fmt: skip
        "chunked": ["video", clip, "-o", tmp / "c.mp4", "--lanes", 2, *TINY],
        "live file": ["live", clip, "-o", tmp / "l.mp4", *TINY],
        "live udp": ["live", f"udp://127.0.0.1:{port}", "-o", tmp / "u.mp4", *TINY],
    }


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=named)
@pytest.mark.parametrize("what", ["video", "zoom", "chunked", "live file", "live udp"])
def test_no_ffmpeg_outlives_dreamvideo(tmp_path, clip, what, sig):
    port = free_udp_port()
    feed = sender(clip, port) if what == "live udp" else None
    try:
        proc = start(commands(clip, tmp_path, port)[what], tmp_path)
        pids = wait_for_ffmpeg(proc, least=2 if what == "live udp" else 1, encoder=True)
        if what.startswith("live"):  # until frames are recorded
            wait_until(lambda: any("frames recorded" in line for line in proc.said))
        time.sleep(0.5)  # at work: frames going through
        pids = sorted({*pids, *ffmpegs_of(proc.pid)})
        os.kill(proc.pid, sig)
        err = proc.end(60)
        assert_gone(pids)
        if sig != signal.SIGKILL:
            assert proc.returncode == 128 + sig and "Traceback" not in err, err
        if what.startswith("live") and sig != signal.SIGKILL:  # the recording is kept
            out = tmp_path / ("l.mp4" if what == "live file" else "u.mp4")
            assert "wrote" in err and out.exists() and count_frames(out) > 0, err
    finally:
        if feed is not None:
            feed.kill()
            feed.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=named)
def test_a_signal_to_the_whole_session_keeps_the_live_recording(tmp_path, clip, sig):
    """A closed terminal or a service manager signals every process of the session, the
    encoders too: they finish when their input ends, the recording is kept."""
    port = free_udp_port()
    feed = sender(clip, port)
    try:
        proc = start(["live", f"udp://127.0.0.1:{port}", "-o", tmp_path / "u.mp4", *TINY],
                     tmp_path)  # fmt: skip
        wait_for_ffmpeg(proc, least=2, encoder=True)  # the stream's reader and the recorder
        wait_until(lambda: any("frames recorded" in line for line in proc.said))
        pids = sorted(ffmpegs_of(proc.pid))
        for pid in session_of(os.getsid(proc.pid)):
            os.kill(pid, sig)
        err = proc.end(60)
        assert proc.returncode == 128 + sig, err
        assert count_frames(tmp_path / "u.mp4") > 0, err
        assert_gone(pids)
    finally:
        feed.kill()
        feed.wait()


def test_a_stream_that_goes_quiet_ends_the_run_and_a_sigterm_then_keeps_it(tmp_path, clip):
    short = tmp_path / "short.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clip), "-t", "4", "-c", "copy",
                    str(short)], check=True)  # fmt: skip
    port = free_udp_port()
    proc = start(["live", f"udp://127.0.0.1:{port}", "-o", tmp_path / "q.mp4", "--timeout", 3,
                  *TINY], tmp_path)  # fmt: skip
    wait_for_ffmpeg(proc)  # listening
    feed = sender(short, port, loop=False)  # 4 s, then nothing
    err = proc.end(90)
    feed.wait()
    assert proc.returncode == 0, err
    assert "sent nothing for 3 s: taken as its end" in err and count_frames(tmp_path / "q.mp4")
    # a SIGTERM while the stream is quiet stops the run at once, and keeps what it recorded
    proc = start(["live", f"udp://127.0.0.1:{port}", "-o", tmp_path / "r.mp4", "-y", *TINY],
                 tmp_path)  # fmt: skip
    wait_for_ffmpeg(proc)  # listening
    feed = sender(short, port, loop=False)
    pids = wait_for_ffmpeg(proc, least=2, encoder=True)
    feed.wait()  # the stream has ended; the run waits for more (20 s by default)
    time.sleep(1.0)
    pids = sorted({*pids, *ffmpegs_of(proc.pid)})
    os.kill(proc.pid, signal.SIGTERM)
    err = proc.end(30)
    assert proc.returncode == 143 and "stopped by SIGTERM" in err, err
    assert count_frames(tmp_path / "r.mp4") > 0
    assert_gone(pids)


def test_a_stream_joined_between_key_frames_waits_for_the_next(tmp_path, clip):
    port = free_udp_port()
    feed = sender(clip, port, gop=72)  # a key frame every 3 s
    try:
        time.sleep(1.5)  # joined half-way between two
        proc = start(["live", f"udp://127.0.0.1:{port}", "-o", tmp_path / "k.mp4",
                      "--seconds", 6, *TINY], tmp_path)  # fmt: skip
        err = proc.end(90)
        assert proc.returncode == 0, err
        assert count_frames(tmp_path / "k.mp4") > 0
    finally:
        feed.kill()
        feed.wait()


def test_a_run_killed_while_its_stream_is_quiet_leaves_no_reader(tmp_path, clip):
    """A reader waiting on a quiet stream writes nothing, so no broken pipe would end it: it
    dies with dreamvideo (a parent-death signal), not 20 s later at its read time-out."""
    short = tmp_path / "short.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clip), "-t", "3", "-c", "copy",
                    str(short)], check=True)  # fmt: skip
    port = free_udp_port()
    proc = start(["live", f"udp://127.0.0.1:{port}", "-o", tmp_path / "k.mp4", *TINY], tmp_path)
    wait_for_ffmpeg(proc)  # listening
    sender(short, port, loop=False).wait()
    pids = ffmpegs_of(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.end(30)
    assert_gone(pids)


def test_no_python_runs_in_a_child_between_fork_and_exec(tmp_path):
    """A child must not run Python in its copy of dreamvideo: there (a ``preexec_fn``) the
    other threads' objects are freed, and in ComfyUI a PyAV scaler's finalizer hung the
    child on a lock copied mid-use before ffmpeg ever started. A finalizer that writes its
    pid shows it: it must run only in this process, when its thread lets it go."""
    from dreamvideo.media.children import child

    marker = tmp_path / "finalized"

    class Held:
        def __del__(self) -> None:
            with open(marker, "a") as f:
                f.write(f"{os.getpid()}\n")

    local, ready, done = threading.local(), threading.Event(), threading.Event()

    def hold() -> None:
        local.held = Held()
        ready.set()
        done.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    ready.wait()
    try:
        r = subprocess.run(**child([ffmpeg_exe(), "-version"]), capture_output=True, timeout=60)
        assert r.returncode == 0 and r.stdout.startswith(b"ffmpeg version")
        assert not marker.exists(), "an object was finalized in the child"
    finally:
        done.set()
        holder.join()
    assert marker.read_text().split() == [str(os.getpid())]
