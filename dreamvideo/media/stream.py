"""A stream read by ffmpeg as it plays: RGB frames from a pipe, each with its time in the
stream, and the stream's sound copied to a file beside at the same time.

OpenCV reads pictures only; a live recording keeps the sound of its stream, so streams are
opened by the bundled ffmpeg instead: one process, one connection (a UDP port is taken once),
the picture to a pipe and the sound to a file, on one clock. The frames' times come from
ffmpeg's ``showinfo`` filter on the same timeline as the sound file, so a recording can cut
the sound at the frame it starts with, even when the stream was joined between key frames.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dreamvideo.errors import UserError
from dreamvideo.media.children import child
from dreamvideo.media.ffmpeg import ffmpeg_exe
from dreamvideo.media.probe import Description, parse_description

_PTS = re.compile(r"pts_time:\s*(-?[\d.]+)")
# what ffmpeg says of the frames before a stream's first key frame
_UNDECODABLE = re.compile(
    r"non-existing PPS|decode_slice_header error|no frame!|Invalid data found|"
    r"Could not find codec parameters|unspecified size|Decoding error",
    re.IGNORECASE,
)
_OWN_TIMEOUT = ("udp://", "rtsp://", "srt://")
# a silent track keeps the sound file valid when the stream has no sound (ffmpeg refuses an
# output without streams); it starts at 0, so the file's timeline is the frames' timeline
_SILENCE = ["-f", "lavfi", "-t", "0.05", "-i", "anullsrc=r=8000:cl=mono"]
STOP_SECONDS = 5.0  # how long ffmpeg gets to finish the sound file when asked to stop


class StreamInput:
    """``url`` (udp://, srt://, rtsp://, rtmp://, http://, or anything ffmpeg opens) decoded
    by ffmpeg. ``sound``: a ``.mka`` file that receives the stream's sound (track 0, PCM)
    while the frames are read. ``timeout``: seconds the stream may send nothing, before its
    first picture (a stream joined between key frames sends none until the next: the wait is
    said once to ``say``, and ffmpeg is started again should it give up) and after it (a
    stream that goes quiet ends, ffmpeg's own read time-out). One that yields no picture in
    time is a :class:`UserError`."""

    def __init__(
        self,
        url: str,
        sound: Path | None = None,
        timeout: float = 20.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.url, self._sound, self._say = url, sound, say or (lambda text: None)
        self._stopping = False
        self._waited = False  # the wait for a key frame is said once
        self._cond = threading.Condition()
        deadline = time.monotonic() + timeout
        while True:
            self._start(timeout)
            with self._cond:
                self._cond.wait_for(
                    lambda: self._described is not None or self._ended(),
                    max(0.0, deadline - time.monotonic()),
                )
                described = self._described
            if described is not None or time.monotonic() >= deadline or self._stopping:
                break
            self._finish()  # ffmpeg gave up before a picture came: try again, in time
        if described is None or described.video is None:
            why = self._last or f"nothing came within {timeout:g} s"
            self.release()
            what = "no picture in it" if described is not None else why
            raise UserError(f"cannot open stream {url}: {what} (is it playing, is the URL right?)")
        v = described.video
        self.size = (v.width, v.height)
        self.fps = float(v.fps or v.tbr or 30)  # the raw output's, as ffmpeg guessed it
        self.has_sound = described.audio_streams > 0
        self._bytes = v.width * v.height * 3
        self._prev = -1.0 / self.fps

    def _start(self, timeout: float) -> None:
        """ffmpeg, reading the stream: a short analysis opens it fast (its size is taken
        from the first frame), and a read that waits ``timeout`` seconds ends it."""
        wait = str(round(timeout * 1_000_000))  # microseconds
        # UDP, RTSP and SRT take their own read time-out; the other protocols the generic one
        quiet = ["-timeout", wait] if self.url.startswith(_OWN_TIMEOUT) else ["-rw_timeout", wait]
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", *quiet,
               "-analyzeduration", "1000000", "-i", self.url,
               *(_SILENCE if self._sound is not None else []),
               "-map", "0:v:0", "-vf", "showinfo=checksum=0", "-fps_mode", "passthrough",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]  # fmt: skip
        if self._sound is not None:
            cmd += ["-map", "0:a:0?", "-map", "1:a", "-c:a", "pcm_s16le", "-f", "matroska",
                    "-y", str(self._sound)]  # fmt: skip
        self._proc = subprocess.Popen(
            **child(cmd, shielded=False),  # stopped by SIGTERM: it then finishes the sound file
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
        )  # fmt: skip
        self._described: Description | None = None
        self._times: deque[float] = deque()
        self._last = ""  # ffmpeg's last line, for the message when it fails
        self._log = threading.Thread(target=self._read_log, name="dreamvideo-stream-log",
                                     daemon=True)  # fmt: skip
        self._log.start()

    def _ended(self) -> bool:
        return self._proc.poll() is not None and not self._log.is_alive()

    def _read_log(self) -> None:
        """ffmpeg's stderr: the input's description, the picture's once its first frame is
        decoded (the size ffmpeg really sends), then one ``showinfo`` line per frame."""
        assert self._proc.stderr is not None
        lines: list[str] = []
        for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            with self._cond:
                if "showinfo" in line and (m := _PTS.search(line)):
                    self._times.append(float(m.group(1)))
                elif line.strip():
                    self._last = line.strip()
                    if self._described is None and not self._waited and _UNDECODABLE.search(line):
                        self._waited = True  # joined between key frames: normal for streams
                        self._say(f"{self.url}: joined between key frames; waiting for the next")
                if self._described is None:
                    lines.append(line)
                    self._described = _described(lines)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def read(self) -> tuple[np.ndarray, float] | None:
        """The next frame ``(H,W,3)`` uint8 RGB and its time in seconds (the sound file's
        timeline); ``None`` at the end of the stream."""
        assert self._proc.stdout is not None
        data = bytearray()
        while len(data) < self._bytes:
            try:
                chunk = self._proc.stdout.read(self._bytes - len(data))
            except (OSError, ValueError):  # closed by release() on another thread
                return None
            if not chunk:
                return None
            data += chunk
        with self._cond:  # the filter logs a frame before it reaches the pipe
            self._cond.wait_for(lambda: self._times or not self._log.is_alive(), 1.0)
            at = self._times.popleft() if self._times else self._prev + 1.0 / self.fps
        self._prev = at
        w, h = self.size
        return np.frombuffer(bytes(data), np.uint8).reshape(h, w, 3), at

    def stop(self) -> None:
        """Ask ffmpeg to stop (it finishes the sound file); a read waiting on it returns.
        Asked once only: a second signal makes ffmpeg quit without finishing its files."""
        if not self._stopping and self._proc.poll() is None:
            self._stopping = True
            self._proc.terminate()

    def release(self) -> None:
        """Stop ffmpeg, letting it finish the sound file (killed if it does not in time).
        Call it from the thread that reads, or after reading has stopped."""
        self.stop()
        self._finish()

    def _finish(self) -> None:
        """Wait for ffmpeg to end (asked to, or on its own), killed if it does not in time."""
        # ffmpeg blocked writing a frame nobody reads would never finish the sound file
        drain = threading.Thread(target=self._drain, name="dreamvideo-stream-drain", daemon=True)
        drain.start()
        try:
            self._proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        drain.join(timeout=STOP_SECONDS)
        self._log.join(timeout=STOP_SECONDS)
        for pipe in (self._proc.stdout, self._proc.stderr):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]

    def _drain(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while self._proc.stdout is not None and self._proc.stdout.read(1 << 16):
                pass


def _block(lines: list[str], head: str) -> list[str] | None:
    """The lines of ffmpeg's section that starts with ``head`` (``"Input #0"``): its first
    line and the indented ones after it; ``None`` until a later section has begun."""
    for k, line in enumerate(lines):
        if line.startswith(head):
            for j in range(k + 1, len(lines)):
                if lines[j][:1] not in (" ", "\t"):
                    return lines[k:j]
            return None
    return None


def _described(lines: list[str]) -> Description | None:
    """What the stream holds, once ffmpeg has said it: the sound streams of the input, and
    the picture of the raw output (said once its first frame is decoded, so a stream joined
    between key frames still gets its size); ``None`` before."""
    given, sent = _block(lines, "Input #0"), _block(lines, "Output #0")
    if given is None or sent is None:
        return None
    given_d, sent_d = parse_description("\n".join(given)), parse_description("\n".join(sent))
    return Description(sent_d.video, given_d.audio_streams, 0, None)
