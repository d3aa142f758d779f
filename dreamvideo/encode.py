"""Writing outputs: pictures with their run settings embedded, always moved into place whole."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, PngImagePlugin

from dreamvideo.errors import UserError

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                 ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
METADATA_KEY = "dreamvideo"


def _check_output(path: str | Path, formats: Sequence[str], kind: str) -> Path:
    """Fail before any work if ``path`` has none of ``formats`` or its folder is missing."""
    path = Path(path)
    if path.suffix.lower() not in formats:
        raise UserError(f"output {path}: unknown {kind} type {path.suffix or '(none)'!r}; "
                        f"use one of {', '.join(formats)}")
    if not path.parent.is_dir():
        raise UserError(f"output folder {path.parent} does not exist")
    return path


def check_image_output(path: str | Path) -> Path:
    return _check_output(path, list(IMAGE_FORMATS), "picture")


def write_image(path: str | Path, rgb: np.ndarray, metadata: dict[str, Any] | None = None) -> None:
    """Write ``(H,W,3)`` uint8 RGB; PNGs carry ``metadata`` as JSON in a text chunk.

    The file is written next to its destination and renamed, so a crash never leaves half a
    picture behind.
    """
    path = check_image_output(path)
    fmt = IMAGE_FORMATS[path.suffix.lower()]
    options: dict[str, Any] = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "PNG" and metadata is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text(METADATA_KEY, json.dumps(metadata, sort_keys=True))
        options["pnginfo"] = info
    tmp = path.with_name(f".{path.name}.part")
    try:
        Image.fromarray(rgb).save(tmp, format=fmt, **options)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_image_metadata(path: str | Path) -> dict[str, Any] | None:
    """The run settings stored in a PNG by :func:`write_image`, if any."""
    with Image.open(path) as im:
        text = im.info.get(METADATA_KEY)
    return json.loads(text) if text else None


def contact_sheet(tiles: list[tuple[str, np.ndarray]], columns: int = 0) -> np.ndarray:
    """Lay ``(label, (H,W,3) uint8)`` pictures on a grid with each label under its picture.

    ``columns`` = 0 picks a near-square grid. Returns ``(H,W,3)`` uint8.
    """
    from PIL import ImageDraw, ImageFont

    if not tiles:
        raise ValueError("a contact sheet needs at least one picture")
    columns = columns or int(np.ceil(np.sqrt(len(tiles))))
    rows = int(np.ceil(len(tiles) / columns))
    h, w = tiles[0][1].shape[:2]
    font_size = max(12, w // 16)
    font = ImageFont.load_default(size=font_size)
    label_h, pad = font_size + 10, 6
    sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + label_h + pad) + pad),
                      (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, (label, rgb) in enumerate(tiles):
        x = pad + (i % columns) * (w + pad)
        y = pad + (i // columns) * (h + label_h + pad)
        sheet.paste(Image.fromarray(rgb), (x, y))
        draw.text((x + 4, y + h + 4), label, fill=(235, 235, 235), font=font)
    return np.asarray(sheet)


# --------------------------------------------------------------------------- video

VIDEO_FORMATS = (".mp4", ".mkv", ".mov")


class EncodeError(UserError):
    """ffmpeg failed; the message ends with the tail of its stderr."""


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def check_video_output(path: str | Path) -> Path:
    return _check_output(path, VIDEO_FORMATS, "video")


def codec_args(width: int, height: int, crf: int, lossless: bool, preset: str) -> list[str]:
    """x264 arguments. yuv420p needs even sizes: odd ones use 4:4:4 instead of being rescaled."""
    if lossless:
        return ["-c:v", "libx264rgb", "-qp", "0", "-preset", preset, "-pix_fmt", "rgb24"]
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    return ["-c:v", "libx264", "-crf", str(crf), "-preset", preset, "-pix_fmt", pix_fmt]


def _tail(log: IO[bytes], lines: int = 4) -> str:
    log.flush()
    log.seek(0)
    text = log.read().decode("utf-8", "replace").strip().splitlines()
    return " | ".join(t.strip() for t in text[-lines:]) or "no output"


def run_ffmpeg(args: Sequence[str], what: str) -> None:
    """Run ffmpeg to completion; an :class:`EncodeError` with its stderr tail if it fails."""
    with tempfile.TemporaryFile() as log:
        r = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error",
                            *args], stdout=subprocess.DEVNULL, stderr=log)
        if r.returncode != 0:
            raise EncodeError(f"{what} failed (ffmpeg exit {r.returncode}): {_tail(log)}")


class VideoWriter:
    """Streams ``(H,W,3)`` uint8 RGB frames into an ffmpeg process, no temporary images.

    Use as a context manager: a clean exit closes the stream and checks ffmpeg's exit status;
    an exception (or Ctrl-C) kills ffmpeg. Either way no ffmpeg process is left behind.
    """

    def __init__(self, path: str | Path, size: tuple[int, int], fps: Fraction,
                 codec: Sequence[str]) -> None:
        self.path, self.size = Path(path), size
        self.frames = 0
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close/abort)
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}",
               "-r", str(fps), "-i", "-", "-an", *codec, "-r", str(fps), str(self.path)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=self._log)

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape != (self.size[1], self.size[0], 3) or rgb.dtype != np.uint8:
            raise ValueError(f"frame {rgb.shape} {rgb.dtype} does not match the video "
                             f"{self.size[0]}x{self.size[1]} uint8")
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(np.ascontiguousarray(rgb).data)
        except OSError:  # ffmpeg quit early (bad arguments, disk full, ...)
            self._proc.wait()
            message = f"encoding {self.path} failed: {_tail(self._log)}"
            self.abort()
            raise EncodeError(message) from None
        self.frames += 1

    def close(self) -> None:
        """Finish the file; raises :class:`EncodeError` if ffmpeg did not succeed."""
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        except OSError:
            pass
        code = self._proc.wait()
        try:
            if code != 0:
                raise EncodeError(f"encoding {self.path} failed (ffmpeg exit {code}): "
                                  f"{_tail(self._log)}")
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


def join_segments(segments: Sequence[Path], output: str | Path,
                  audio_source: str | Path | None = None, audio_start: float = 0.0,
                  duration: float | None = None, metadata: dict[str, Any] | None = None
                  ) -> None:
    """Concatenate encoded segments (stream copy), add the source's sound, write metadata.

    The sound is copied (``-c:a copy``) from ``audio_start`` for ``duration`` seconds; a
    codec the container cannot hold is re-encoded to AAC instead. Sources without sound
    work too. The result is written beside ``output`` and renamed into place when complete.
    """
    output = Path(output)
    tmp = output.with_name(f".{output.stem}.part{output.suffix}")
    listing = output.with_name(f".{output.stem}.segments.txt")
    quoted = [str(Path(s).resolve()).replace("'", "'\\''") for s in segments]
    listing.write_text("".join(f"file '{q}'\n" for q in quoted), encoding="utf-8")
    args = ["-f", "concat", "-safe", "0", "-i", str(listing)]
    if audio_source is not None:
        args += ["-ss", f"{audio_start:.6f}"] if audio_start else []
        args += ["-t", f"{duration:.6f}"] if duration else []
        args += ["-i", str(audio_source), "-map", "0:v:0", "-map", "1:a:0?"]
    tail = [*_metadata_args(metadata)]
    if output.suffix.lower() in (".mp4", ".mov"):
        tail += ["-movflags", "+faststart"]
    try:
        try:
            run_ffmpeg([*args, "-c", "copy", *tail, str(tmp)], f"writing {output}")
        except EncodeError:
            if audio_source is None:
                raise
            # e.g. PCM sound cannot go into MP4 as is: keep the video, re-encode the sound
            run_ffmpeg([*args, "-c:v", "copy", "-c:a", "aac", "-b:a", "192k", *tail, str(tmp)],
                       f"writing {output}")
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
        listing.unlink(missing_ok=True)


def read_video_metadata(path: str | Path) -> dict[str, Any] | None:
    """The run settings :func:`join_segments` stored in a video's ``comment`` tag, if any."""
    r = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i",
                        str(path), "-f", "ffmetadata", "-"], capture_output=True)
    text = r.stdout.decode("utf-8", "replace")
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
        return json.loads("".join(unescaped))
    except json.JSONDecodeError:
        return None
