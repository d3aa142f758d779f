"""The one owner of ffmpeg: probing, the streaming frame writer, segment joining, metadata.

Every call has a time limit and kills its child process on error, time-out or Ctrl-C, and
every child dies with dreamvideo however it ends (:mod:`dreamvideo.media.children`), so no
ffmpeg is ever left behind; failures are :class:`EncodeError` carrying the tail of ffmpeg's
stderr. Finished files are written under a unique temporary name in the target folder and
renamed into place only once they are complete and checked.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from dreamvideo.errors import UserError
from dreamvideo.media.children import child
from dreamvideo.media.paths import PARTS, Inputs, check_output, replace_into, temp_path
from dreamvideo.names import VIDEO_SUFFIXES

# raw frames ffmpeg is fed or hands back -> (channels, 16 bits)
RAW_FORMATS = {"rgb24": (3, False), "rgba": (4, False), "rgb48le": (3, True), "rgba64le": (4, True)}
PROBE_SECONDS = 60  # reading a file's header; a network mount can be slow, a hang is a bug
CLOSE_SECONDS = 300  # flushing the encoder's queued frames at close


class EncodeError(UserError):
    """ffmpeg failed; the message ends with the tail of its stderr."""


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=4)
def encoders(exe: str) -> frozenset[str] | None:
    """The encoder names the ffmpeg ``exe`` has (``libx264``, ``aac``, ...); ``None`` when it
    cannot be asked (then nothing is refused on its account)."""
    try:
        listed = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True,
                                text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = re.findall(r"^\s*[VAS][\w.]{5}\s+(\S+)", listed.stdout, re.MULTILINE)
    return frozenset(names) if listed.returncode == 0 and names else None


def _base() -> list[str]:
    return [ffmpeg_exe(), "-hide_banner", "-nostdin"]


def file_arg(path: str | Path) -> str:
    """``path`` as ffmpeg (and OpenCV's reader, which is ffmpeg) must be given it: absolute, so
    that ``-dash.mp4`` is not read as an option nor ``a:b.mp4`` as the protocol ``a``."""
    return str(Path(path).absolute())


def _tail(text: str | bytes, lines: int = 4) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    kept = [t.strip() for t in text.strip().splitlines()[-lines:]]
    return " | ".join(kept)[-400:] or "no output"


def run_ffmpeg(args: Sequence[str], what: str, timeout: float) -> str:
    """Run ffmpeg to completion within ``timeout`` seconds; returns its stdout as text."""
    return _run(args, what, timeout).decode("utf-8", "replace")


def _run(args: Sequence[str], what: str, timeout: float) -> bytes:
    """Run ffmpeg to completion within ``timeout`` seconds; returns its stdout.

    :class:`EncodeError` with its stderr tail if it fails or runs out of time (it is killed:
    ``subprocess.run`` kills the child on any exception, Ctrl-C included).
    """
    try:
        r = subprocess.run(
            **child([*_base(), "-y", "-v", "error", *args]), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise EncodeError(f"{what} timed out after {timeout:.0f} s (ffmpeg was stopped)") from None
    if r.returncode != 0:
        raise EncodeError(f"{what} failed (ffmpeg exit {r.returncode}): {_tail(r.stderr)}")
    return r.stdout


def add_soundtrack(
    video: str | Path,
    sound: Sequence[str],
    output: str | Path,
    audio_filter: str | None = None,
) -> None:
    """``video``'s picture (copied) with a sound (AAC) cut to its length, into ``output``.
    ``sound``: ffmpeg's input arguments for it, a file (``["-i", path]``) or a generator
    (``["-f", "lavfi", "-i", "sine=frequency=440"]``); ``audio_filter``: e.g. fades."""
    run_ffmpeg(
        [
            "-i", file_arg(video), *sound,
            *(["-af", audio_filter] if audio_filter else []),
            "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "128k",
            "-shortest", file_arg(output),
        ],
        f"adding a soundtrack to {video}",
        timeout=120,
    )  # fmt: skip


def read_audio(path: str | Path, rate: int) -> np.ndarray:
    """The sound of ``path`` (any file ffmpeg reads, a video's soundtrack too) as mono
    float32 samples at ``rate`` Hz, shape ``(samples,)``."""
    try:
        raw = _run(
            ["-i", file_arg(path), "-vn", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"],
            f"reading the sound of {path}",
            600,
        )
    except EncodeError as e:
        raise UserError(f"cannot read sound from {path}: {str(e).split(': ', 1)[-1]}") from None
    if not raw:
        raise UserError(f"{path} has no sound to read")
    return np.frombuffer(raw, np.float32).copy()


def describe(path: Path, timeout: float = PROBE_SECONDS) -> str:
    """ffmpeg's own description of a file (its stderr for ``-i path``)."""
    try:
        r = subprocess.run(
            **child([*_base(), "-i", file_arg(path)]), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise UserError(
            f"reading {path} timed out after {timeout:.0f} s (is it on a stalled network drive?)"
        ) from None
    return r.stderr.decode("utf-8", "replace")


def packet_times(
    path: Path, stream: int = 0, limit: int | None = None, timeout: float = PROBE_SECONDS
) -> tuple[list[int], Fraction]:
    """The presentation times of video stream ``stream``'s packets (the first ``limit`` of
    them, or all), ascending, in units of the time base returned beside them: a
    constant-rate clip steps evenly, a variable-rate one does not. Nothing is decoded
    (``framecrc`` of a stream copy)."""
    text = run_ffmpeg(
        ["-i", file_arg(path), "-map", f"0:v:{stream}", "-c", "copy",
         *(["-frames:v", str(limit)] if limit else []), "-f", "framecrc", "-"],
        f"reading the frame times of {path}",
        timeout,
    )  # fmt: skip
    base = re.search(r"^#tb 0: (\d+)/(\d+)", text, re.MULTILINE)
    unit = Fraction(int(base.group(1)), int(base.group(2))) if base else Fraction(1)
    pts = [int(f.split(",")[2]) for f in text.splitlines() if f and not f.startswith("#")]
    return sorted(pts), unit


def first_frame_info(path: Path, stream: int = 0, timeout: float = PROBE_SECONDS) -> str:
    """ffmpeg's ``showinfo`` of video stream ``stream``'s first frame: what the frame itself
    carries (HDR10's mastering display and light levels in its SEI, where the container does
    not repeat them)."""
    r = subprocess.run(
        **child([*_base(), "-i", file_arg(path), "-map", f"0:v:{stream}", "-frames:v", "1",
                 "-vf", "showinfo", "-f", "null", "-"]),
        capture_output=True, timeout=timeout,
    )  # fmt: skip
    return r.stderr.decode("utf-8", "replace")


def raw_frames(
    args: Sequence[str], frame_bytes: int, what: str, timeout: float = CLOSE_SECONDS
) -> Iterator[bytes]:
    """Raw frames of ``frame_bytes`` each from an ffmpeg run with ``args`` (input, filters and
    ``-pix_fmt``) that writes raw video to a pipe. ffmpeg is stopped whenever the caller
    stops; an ffmpeg that fails is :class:`EncodeError` with the tail of its stderr."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        **child([*_base(), "-v", "error", *args, "-f", "rawvideo", "-"]),
        stdout=subprocess.PIPE,
        stderr=log,
    )
    try:
        assert proc.stdout is not None
        while len(frame := proc.stdout.read(frame_bytes)) == frame_bytes:
            yield frame
        if proc.wait(timeout=timeout) != 0:
            log.seek(0)
            raise EncodeError(f"{what} failed (ffmpeg exit {proc.returncode}): {_tail(log.read())}")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()


def count_frames(path: Path, timeout: float = PROBE_SECONDS) -> int:
    """Video frames actually stored in ``path`` (packets counted, nothing decoded)."""
    text = run_ffmpeg(
        [
            "-i",
            file_arg(path),
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "null",
            "-",
            "-progress",
            "pipe:1",
            "-nostats",
        ],
        f"counting the frames of {path}",
        timeout,
    )
    found = re.findall(r"^frame=(\d+)", text, re.MULTILINE)
    return int(found[-1]) if found else 0


class VideoWriter:
    """Streams raw RGB(A) frames into an ffmpeg process, no temporary images.

    Use as a context manager: a clean exit closes the stream and checks ffmpeg's exit status
    (waiting at most ``close_timeout`` seconds); an exception (or Ctrl-C) kills ffmpeg. Either
    way no ffmpeg process is left behind.
    """

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        fps: Fraction,
        codec: Sequence[str],
        close_timeout: float = CLOSE_SECONDS,
        pix_fmt: str = "rgb24",
        url: bool = False,
    ) -> None:
        """``url``: ``path`` is a stream URL (udp://, srt://, rtmp://) handed to ffmpeg as it
        is, ``codec`` naming the container (``-f mpegts``)."""
        self.path, self.size, self.close_timeout = Path(path), size, close_timeout
        self.pix_fmt = pix_fmt  # the raw frames: rgb24, rgba, rgb48le or rgba64le
        channels, deep = RAW_FORMATS[pix_fmt]
        self._shape = (size[1], size[0], channels)
        self._dtype = np.dtype("<u2") if deep else np.dtype(np.uint8)
        self.frames = 0
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close/abort)
        cmd = [
            *_base(),
            "-y",
            "-v",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            pix_fmt,
            "-s",
            f"{size[0]}x{size[1]}",
            "-r",
            str(fps),
            "-i",
            "-",
            "-an",
            *codec,
            "-r",
            str(fps),
            str(path) if url else file_arg(self.path),
        ]
        self._proc = subprocess.Popen(
            **child(cmd), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log
        )

    def _log_tail(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return _tail(self._log.read())

    def write(self, rgb: np.ndarray) -> None:
        """Append one ``(H,W,3)`` (or ``(H,W,4)`` for RGBA) frame, uint8 or uint16 as the
        writer's ``pix_fmt`` says."""
        if rgb.shape != self._shape or rgb.dtype != self._dtype:
            raise ValueError(
                f"frame {rgb.shape} {rgb.dtype} does not match the video "
                f"{self.size[0]}x{self.size[1]} {self.pix_fmt}"
            )
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(np.ascontiguousarray(rgb).data)
        except OSError:  # ffmpeg quit early (bad arguments, disk full, ...)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)
            message = f"encoding {self.path} failed: {self._log_tail()}"
            self.abort()
            raise EncodeError(message) from None
        self.frames += 1

    def close(self) -> None:
        """Finish the file; raises :class:`EncodeError` if ffmpeg did not succeed in time."""
        with contextlib.suppress(OSError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        try:
            code = self._proc.wait(timeout=self.close_timeout)
        except subprocess.TimeoutExpired:
            tail = self._log_tail()
            self.abort()
            raise EncodeError(
                f"encoding {self.path} did not finish within {self.close_timeout:.0f} s: {tail}"
            ) from None
        except BaseException:  # Ctrl-C while flushing: never leave ffmpeg running
            self.abort()
            raise
        try:
            if code != 0:
                raise EncodeError(
                    f"encoding {self.path} failed (ffmpeg exit {code}): {self._log_tail()}"
                )
        finally:
            self._log.close()

    def abort(self) -> None:
        """Kill ffmpeg and forget the file."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        self._log.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _metadata_args(metadata: dict[str, Any] | None) -> list[str]:
    if metadata is None:
        return []
    return ["-metadata", f"comment={json.dumps(metadata, sort_keys=True)}"]


@dataclass(frozen=True)
class Sound:
    """Where a render's sound and subtitles come from: the audio streams ``audio`` picks
    and every subtitle stream of ``source``, from ``start`` seconds on."""

    source: Path
    start: float = 0.0
    subtitles: bool = False  # the source has subtitle streams to carry across
    audio: str = "a?"  # which of its sound streams: every one, or one ("a:0")


def _even_times(concat: Sequence[str], fps: Fraction, what: str) -> list[str]:
    """A bitstream filter that gives the frames of the segments ``concat`` joins (ffmpeg's
    input arguments) even decoding times and durations at ``fps``, in MP4 and MOV.

    Each segment is encoded alone, so its first decoding time lies as many frames before its
    first picture as its encoder delays pictures (B-frames): two frames for most, none for a
    segment too short for B-frames. Joined as they are, the decoding times step back at such
    a seam, the muxer "fixes" them by shortening frames, and a decoder that goes by time then
    repeats one picture at every seam. The pictures' own times are right; the decoding times
    are made ``(N - D)`` frames, ``D`` the largest delay of any segment."""
    text = run_ffmpeg([*concat, "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"], what, 120)
    base = re.search(r"^#tb 0: (\d+)/(\d+)", text, re.MULTILINE)
    if base is None:
        return []
    ticks = 1 / (fps * Fraction(int(base.group(1)), int(base.group(2))))
    if ticks.denominator != 1:  # a time base that cannot hold the rate exactly: left as it is
        return []
    pts = [int(f.split(",")[2]) for f in text.splitlines() if f and not f.startswith("#")]
    if not pts:
        return []
    delay = max(0, max(n - (p - min(pts)) // int(ticks) for n, p in enumerate(pts)))
    t = int(ticks)
    return ["-bsf:v", f"setts=pts=PTS:dts=(N-{delay})*{t}+{min(pts)}:duration={t}"]


def join_segments(
    segments: Sequence[Path],
    output: str | Path,
    frames: int,
    sound: Sound | None = None,
    duration: float | None = None,
    metadata: dict[str, Any] | None = None,
    final: Sequence[str] = (),
    fps: Fraction | None = None,
) -> list[str]:
    """Concatenate encoded segments, add the source's sound and subtitles, write metadata.

    The video is copied as it is (at ``fps``, MP4 and MOV get even decoding times, see
    :func:`_even_times`), or made into an animation by ``final`` (GIF, WebP, APNG
    from lossless segments). Every audio stream is copied from ``sound.start`` for
    ``duration`` seconds, or re-encoded where the container cannot hold it as it is; every
    subtitle stream is carried too, converted to the container's format, or left out where
    it cannot be. The result is written under a unique name beside ``output``, checked to
    hold exactly ``frames`` frames, and only then renamed into place; on any failure the
    output is untouched and the segments are kept. Returns what was left out, said once.
    """
    from dreamvideo.media.codecs import sound_codec, subtitle_codec

    output = Path(output)
    suffix = output.suffix.lower()
    # stream copy is fast; a sound re-encode or an animation is not
    timeout = 120 + (10 if final else 2) * (duration or 0)
    notes: list[str] = []
    with temp_path(output) as tmp, temp_path(output, ".txt") as listing:
        quoted = [file_arg(s).replace("'", "'\\''") for s in segments]
        listing.write_text("".join(f"file '{q}'\n" for q in quoted), encoding="utf-8")
        args = ["-f", "concat", "-safe", "0", "-i", file_arg(listing)]
        video = [*final] if final else ["-c:v", "copy"]
        if not final and fps and suffix in (".mp4", ".mov") and len(segments) > 1:
            video += _even_times(args, fps, f"reading the frame times of {output}")
        tail = _metadata_args(metadata) if suffix not in (".gif", ".webp", ".apng") else []
        if suffix in (".mp4", ".mov"):
            tail += ["-movflags", "+faststart"]
        tries = [[]]
        if sound is not None:
            args += ["-ss", f"{sound.start:.6f}"] if sound.start else []
            args += ["-t", f"{duration:.6f}"] if duration else []
            args += ["-i", file_arg(sound.source)]
            subs = ["-map", "1:s?", "-c:s", subtitle_codec(suffix)] if sound.subtitles else []
            audio = ["-map", f"1:{sound.audio}"]
            reencode = ["-c:a", *sound_codec(suffix)]
            # as they are; the sound re-encoded (PCM into MP4, AAC into WebM); no subtitles
            tries = [[*audio, "-c:a", "copy", *subs], [*audio, *reencode, *subs]]
            tries += [[*audio, *reencode]] if subs else []
        for k, streams in enumerate(tries):
            try:
                # a filter graph (a GIF's palette) names its own output
                picture = video if "-filter_complex" in video else ["-map", "0:v:0", *video]
                run_ffmpeg(
                    [*args, *picture, *streams, *tail, file_arg(tmp)],
                    f"writing {output}",
                    timeout,
                )
            except EncodeError:
                if k == len(tries) - 1:
                    raise
                continue
            if k == 2:
                notes.append(f"the subtitles are left out: {suffix} cannot hold them as they are")
            break
        got = count_frames(tmp)
        if got != frames:
            raise EncodeError(
                f"writing {output} failed: the joined file holds {got} frames, "
                f"not {frames}; the rendered parts are kept for --resume"
            )
        replace_into(tmp, output)
    return notes


def read_video_metadata(path: str | Path) -> dict[str, Any] | None:
    """The run settings :func:`join_segments` stored in a video's ``comment`` tag: ``None``
    when the file has none, holds something else there, or cannot be read at all."""
    try:
        text = run_ffmpeg(
            ["-i", file_arg(path), "-f", "ffmetadata", "-"], f"reading {path}", PROBE_SECONDS
        )
    except EncodeError:
        return None
    value, collecting = [], False
    for line in text.splitlines():
        if line.lower().startswith("comment="):
            collecting, line = True, line.split("=", 1)[1]
        elif collecting and not value[-1].endswith("\\"):
            break
        if collecting:
            value.append(line)
    if not value:
        return None
    raw = "\n".join(value)
    # ffmetadata escapes '=', ';', '#', '\\' and newlines with a backslash
    unescaped, i = [], 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            i += 1
        unescaped.append(raw[i])
        i += 1
    try:
        settings = json.loads("".join(unescaped))
    except (json.JSONDecodeError, RecursionError):
        return None
    return settings if isinstance(settings, dict) else None


def check_video_output(path: str | Path, inputs: Inputs = (), overwrite: bool = False) -> Path:
    """See :func:`dreamvideo.media.paths.check_output`; the name leaves room for the
    ``.parts`` folder beside it."""
    return check_output(path, VIDEO_SUFFIXES, "video", inputs, overwrite, reserve=len(PARTS))
