"""Live pictures in and out: a camera or stream read on a thread that keeps only the newest
frame, and a small HTTP server that shows the dreamed picture as an MJPEG stream.

Stale frames are dropped at the input, never queued: whoever takes a frame gets the newest
one and the time it was captured, so the latency from capture to output can be measured.
A file is read at its own rate with ``realtime`` (frames it could not take are dropped), or
frame by frame without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from dreamvideo.errors import UserError
from dreamvideo.media.ffmpeg import Sound
from dreamvideo.media.ffmpeg import describe as describe_file
from dreamvideo.media.probe import parse_description
from dreamvideo.media.stream import StreamInput
from dreamvideo.text import excerpt, path_text

STREAMS = ("udp://", "srt://", "rtsp://", "rtmp://", "http://", "https://", "tcp://")
OPEN_SECONDS = 20.0  # how long a stream may take to deliver its first frame (and go quiet)


@dataclass(frozen=True)
class Captured:
    """One frame handed over by :class:`Latest`."""

    rgb: np.ndarray  # (H,W,3) uint8
    at: float  # time.monotonic() when it was read from the source
    index: int  # frames read from the source so far, this one included
    time: float = 0.0  # seconds into the source (the timeline of Latest.sound)


ACCEPTED = (
    "a camera index (0), a device path, a stream URL (udp://, srt://, rtsp://, http://) or a clip"
)
MAX_CAMERA = 1023  # camera indices OpenCV takes: 0 is the first camera


def _camera(source: str) -> bool:
    return source.isascii() and source.isdigit()


def describe(source: str) -> str:
    """What a live source is, for messages: a camera, a stream or a file."""
    if _camera(source):
        return f"camera {source}"
    return f"stream {source}" if source.startswith(STREAMS) else f"file {path_text(source)}"


def check_source(source: str) -> bool:
    """Whether ``source`` is a file (a clip, or a camera's device path); what cannot be read
    as a live source (nothing there, a pipe that would block, a folder, a camera number no
    camera has) is a :class:`UserError` naming what would be accepted."""
    if _camera(source):
        if int(source) > MAX_CAMERA:
            raise UserError(
                f"live source {excerpt(source)}: no camera has that number; cameras are "
                f"numbered from 0 (the first) to {MAX_CAMERA}"
            )
        return False
    if source.startswith(STREAMS):
        return False
    try:
        mode = os.stat(source).st_mode
    except FileNotFoundError:
        raise UserError(f"live source {path_text(source)}: no such file; give {ACCEPTED}") from None
    except OSError as e:
        raise UserError(f"live source {path_text(source)}: {e.strerror or e}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):  # a camera is a character device
        kind = "a folder" if stat.S_ISDIR(mode) else "a pipe or socket, which would block"
        raise UserError(f"live source {path_text(source)} is {kind}; give {ACCEPTED}")
    return True


def file_sound(path: Path) -> Sound | None:
    """The sound of the clip at ``path``; ``None`` where it has none."""
    return Sound(path) if parse_description(describe_file(path)).audio_streams else None


class _OpenCvInput:
    """A camera, a device path or a file, read by OpenCV (pictures only)."""

    def __init__(self, source: str) -> None:
        try:
            self._cap = cv2.VideoCapture(int(source) if _camera(source) else source)
        except cv2.error as e:  # OpenCV refuses what it cannot even try to open
            raise UserError(f"cannot open {describe(source)}: {str(e).strip()[-200:]}") from None
        if not self._cap.isOpened():
            self._cap.release()
            raise UserError(
                f"cannot open {describe(source)}: OpenCV found no picture there (is the "
                "camera connected, the stream running, the URL right?)"
            )
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0) or 30.0
        self._count = 0

    def read(self) -> tuple[np.ndarray, float] | None:
        ok, bgr = self._cap.read()
        if not ok:
            return None
        self._count += 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (self._count - 1) / self.fps

    def stop(self) -> None:
        """Nothing to do: OpenCV's read cannot be cut short (the reader sees the stop after
        it); :meth:`release` runs on the reading thread."""

    def release(self) -> None:
        self._cap.release()


class Latest:
    """Reads ``source`` (a camera index such as ``"0"``, a device path, a stream URL, or a
    file) on a thread of its own, keeping only the newest frame. Streams are read by ffmpeg
    (:class:`dreamvideo.media.stream.StreamInput`), cameras and files by OpenCV.

    ``paced``: a file is read at its own frame rate, as a camera would deliver it (a stream
    or camera always is); without it every frame of a file is handed over in turn.
    ``sound``: a ``.mka`` file a stream's sound is copied to as it plays, for a recording
    (a file's own sound is used where it has one; a camera's is not read). :attr:`sound`
    then says where the source's sound is, ``None`` where it has none.
    """

    def __init__(
        self,
        source: str,
        paced: bool = True,
        sound: Path | None = None,
        quiet: float = OPEN_SECONDS,
        say: Callable[[str], None] | None = None,
    ) -> None:
        """``quiet``: seconds a stream may send nothing (its first picture included) before
        it counts as ended; ``say`` hears what opening it takes (a wait for a key frame)."""
        self.source = source
        self.file = check_source(source)
        self.sound: Sound | None = None
        if source.startswith(STREAMS):
            stream = StreamInput(source, sound, quiet, say)
            self._input: _OpenCvInput | StreamInput = stream
            if sound is not None and stream.has_sound:
                self.sound = Sound(sound, audio="a:0")  # track 1 is the silent one
        else:
            self._input = _OpenCvInput(source)
            if sound is not None and self.file:
                self.sound = file_sound(Path(source))
        self.fps = self._input.fps
        self._paced = paced or not self.file
        self._cond = threading.Condition()
        self._frame: Captured | None = None
        self.read = 0  # frames read from the source
        self.dropped = 0  # frames read but never handed over (a newer one replaced them)
        self.ended = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dreamvideo-live-in", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        try:
            while not self._stop.is_set():
                got = self._input.read()
                if got is None:
                    break
                rgb, at = got
                if self.file and self._paced:  # as a camera would: one frame per 1/fps
                    wait = start + self.read / self.fps - time.monotonic()
                    if wait > 0:
                        self._stop.wait(wait)
                with self._cond:
                    if not self._paced:  # every frame of a file: wait until it is taken
                        while self._frame is not None and not self._stop.is_set():
                            self._cond.wait(0.1)
                    self.read += 1
                    if self._frame is not None:
                        self.dropped += 1
                    self._frame = Captured(rgb, time.monotonic(), self.read, at)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()
            self._input.release()

    def take(self, timeout: float = OPEN_SECONDS) -> Captured | None:
        """The newest frame not handed over yet, waiting for one; ``None`` once the source
        has ended (or sent nothing for ``timeout`` seconds)."""
        with self._cond:
            deadline = time.monotonic() + timeout
            while self._frame is None and not self.ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            got, self._frame = self._frame, None
            self._cond.notify_all()
            return got

    def close(self) -> None:
        """Stop reading; a stream's sound file is complete once this returns."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._input.stop()  # cuts short a read waiting on a stream
        self._thread.join(timeout=10)


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>dreamvideo live</title>
<style>body{margin:0;background:#000}img{width:100vw;height:100vh;object-fit:contain}
#s{position:fixed;left:8px;bottom:8px;color:#ddd;font:13px monospace;background:#0008;
padding:2px 6px}</style></head><body><img src="/stream.mjpg" alt="dream"><div id="s"></div>
<script>setInterval(async()=>{try{const r=await (await fetch('/stats')).json();
document.getElementById('s').textContent=`${r.fps.toFixed(1)} dreamed fps, ${r.dropped}
 dropped, latency ${(r.latency*1000).toFixed(0)} ms`}catch(e){}},1000)</script></body></html>
"""


class Broadcast:
    """The newest dreamed picture, served over HTTP at ``host:port``: ``/`` a page that
    shows it (with fps, drops and latency in a corner), ``/stream.mjpg`` an MJPEG stream
    (browsers, OBS's browser or media source), ``/frame.jpg`` the newest picture and
    ``/stats`` the figures as JSON."""

    def __init__(self, host: str, port: int, stats: Callable[[], dict[str, float]]) -> None:
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._count = 0
        self._closed = False
        broadcast = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet: the live line says enough
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/":
                    self._send(PAGE.encode(), "text/html; charset=utf-8")
                elif self.path == "/stats":
                    self._send(json.dumps(stats()).encode(), "application/json")
                elif self.path == "/frame.jpg":
                    jpeg = broadcast.wait(0)
                    if jpeg is None:
                        self.send_error(503, "no dreamed picture yet")
                    else:
                        self._send(jpeg, "image/jpeg")
                elif self.path == "/stream.mjpg":
                    self._stream()
                else:
                    self.send_error(404)

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                seen = -1
                with contextlib.suppress(OSError):  # the viewer went away
                    while True:
                        jpeg, seen = broadcast.next_after(seen)
                        if jpeg is None:
                            return
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(jpeg)).encode()
                            + b"\r\n\r\n"
                            + jpeg
                            + b"\r\n"
                        )

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as e:
            raise UserError(f"--serve {host}:{port}: cannot listen there ({e.strerror})") from None
        self._server.daemon_threads = True
        self.address = self._server.server_address[:2]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="dreamvideo-live-serve", daemon=True
        )
        self._thread.start()

    def publish(self, rgb: np.ndarray, quality: int = 85) -> None:
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        with self._cond:
            self._jpeg, self._count = data.tobytes(), self._count + 1
            self._cond.notify_all()

    def wait(self, timeout: float) -> bytes | None:
        with self._cond:
            if self._jpeg is None and timeout:
                self._cond.wait(timeout)
            return self._jpeg

    def next_after(self, seen: int) -> tuple[bytes | None, int]:
        """The next picture after number ``seen`` (waiting for it); ``None`` once closed."""
        with self._cond:
            while self._count == seen and not self._closed:
                self._cond.wait(1.0)
            return (None if self._closed else self._jpeg), self._count

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def parse_serve(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` -> (host, port); 127.0.0.1 unless a host is given."""
    host, _, port = text.rpartition(":")
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65535):
        raise UserError(f"--serve {text!r}: give a port (8000) or HOST:PORT (0.0.0.0:8000)")
    return host or "127.0.0.1", int(port)


def stream_args(url: str, fps: float) -> list[str]:
    """ffmpeg's arguments for pushing the dream to ``url``: H.264 tuned for latency (a key
    frame every second), in FLV for rtmp://, MPEG-TS for the rest (udp://, srt://, tcp://)."""
    if not url.startswith(("udp://", "srt://", "tcp://", "rtmp://", "rtmps://")):
        raise UserError(
            f"--stream {url!r}: give a udp://, srt://, tcp:// or rtmp:// URL for ffmpeg to push to"
        )
    container = "flv" if url.startswith("rtmp") else "mpegts"
    keys = str(max(1, round(fps)))
    return ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
            "-pix_fmt", "yuv420p", "-g", keys, "-f", container]  # fmt: skip
