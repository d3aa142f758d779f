"""Clips in: probing and frames streamed in order with OpenCV (nothing written to disk)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from dreamvideo.errors import UserError
from dreamvideo.media.ffmpeg import describe, file_arg


@dataclass(frozen=True)
class VideoInfo:
    """What a clip's headers say. ``frame_count`` is an estimate, for progress bars only."""

    path: Path
    width: int  # pixels, after rotation metadata is applied
    height: int
    fps: Fraction  # exact rate, e.g. 30000/1001
    frame_count: int
    rotation: int  # degrees the stored frames are turned to be upright
    has_audio: bool
    duration: float | None  # seconds, from the container


def exact_fps(fps: float) -> Fraction:
    """The rate as a fraction: 25.0 -> 25, 29.97002997 -> 30000/1001 (NTSC rates exactly)."""
    for den in (1, 1001):
        num = round(fps * den)
        if num and abs(num / den - fps) < 1e-5 * fps:  # relative: 0.1 fps is not 100/1001
            return Fraction(num, den)
    return Fraction(fps).limit_denominator(1001)


def probe_video(path: str | Path) -> VideoInfo:
    """Open ``path`` with OpenCV and ffmpeg; a :class:`UserError` if it is not a playable clip."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input file {path} does not exist")
    cap = cv2.VideoCapture(file_arg(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise UserError(f"{path} is not a video OpenCV can open (try converting it to MP4)")
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        ok, frame = cap.read()
        if not ok or frame is None:
            raise UserError(f"{path} has no readable video frames (truncated or not a video)")
        fps, count = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
    finally:
        cap.release()
    header = describe(path)
    m = re.search(r"Duration: (\d+):(\d+):([\d.]+)", header)
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None
    if not fps or fps > 1000:
        raise UserError(f"{path}: cannot tell its frame rate ({fps!r})")
    return VideoInfo(
        path,
        frame.shape[1],
        frame.shape[0],
        exact_fps(fps),
        max(count, 0),
        rotation,
        bool(re.search(r"Stream #\S+.*: Audio:", header)),
        duration,
    )


def read_frames(
    path: str | Path, first: int = 0, last: int | None = None, size: tuple[int, int] | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, (H,W,3) uint8 RGB)`` for frames ``first`` .. ``last`` (exclusive).

    Frames are read one at a time until the clip ends (the header's frame count is not
    trusted), turned upright by the rotation metadata and resized to ``size`` = (w, h) with
    area averaging. Frames before ``first`` are decoded and dropped: seeking in compressed
    video is not frame-exact, and resumed renders must see exactly the same frames.
    """
    cap = cv2.VideoCapture(file_arg(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise UserError(f"{path} is not a video OpenCV can open")
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        index = 0
        while last is None or index < last:
            if index < first:
                if not cap.grab():
                    return
                index += 1
                continue
            ok, bgr = cap.read()
            if not ok or bgr is None:
                return
            if size is not None and (bgr.shape[1], bgr.shape[0]) != tuple(size):
                shrink = size[0] < bgr.shape[1]
                bgr = cv2.resize(
                    bgr, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
                )
            yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()
