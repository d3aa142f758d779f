"""Clips in: probing, and frames streamed in order (nothing written to disk).

OpenCV reads the clips it reads right. Where it cannot carry what a source holds, an ffmpeg
pipe with the filters that source needs reads it instead (same speed: 3.2-3.7 against 2.5-2.7
ms per 720p frame, 0.8-0.9 against 0.7 at 640x272, both measured): interlaced video
(deinterlaced with bwdif; OpenCV hands back black frames), HDR (HLG or PQ, converted to SDR
BT.709 by zscale and a tone map, or kept), non-square pixels (scaled to square pixels of the
display aspect), variable frame rates (made constant, frames repeated or dropped so the sound
stays in sync), alpha, and more than 8 bits when a deep output asks for them. As a last check
the first frame of every clip OpenCV reads is compared with ffmpeg's; a clip OpenCV decodes
wrongly is read by ffmpeg. Frame folders are read by :mod:`dreamvideo.media.sequence`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from dreamvideo.errors import UserError
from dreamvideo.media.ffmpeg import (
    EncodeError,
    describe,
    file_arg,
    first_frame_info,
    packet_times,
    raw_frames,
)
from dreamvideo.media.probe import (
    Timing,
    VideoInfo,
    VideoStream,
    exact_fps,
    frame_rate,
    light_level,
    mastering_display,
    parse_description,
)
from dreamvideo.media.sequence import is_sequence, probe_sequence, read_sequence
from dreamvideo.text import path_text

HDR_MODES = ("sdr", "keep")  # an HDR source is dreamed in SDR BT.709, or kept as it is
# OpenCV's first frame may differ from ffmpeg's by rounding (a level or two); a decoder that
# hands back black or garbled frames differs by tens of levels
DECODE_MISMATCH = 12.0


TIMING_PACKETS = 600  # frames whose times tell a constant rate (all are read when uneven)


def _timing(path: Path, stream: VideoStream) -> Timing | None:
    """The clip's rate from its frames' times: exact where they step evenly; the average of
    all of them where they do not (a variable rate, timestamps that jitter). A clip whose
    first frames step evenly is read whole only when ffmpeg's own average rate and base
    rate disagree, which a constant-rate clip never shows."""
    ticks, base = packet_times(path, stream.index, TIMING_PACKETS)
    timing = frame_rate(ticks, base)
    hinted = stream.fps is not None and stream.tbr is not None and stream.fps != stream.tbr
    if len(ticks) >= TIMING_PACKETS and (hinted or (timing is not None and timing.uneven)):
        timing = frame_rate(*packet_times(path, stream.index))
    return timing


def _display_size(stream: VideoStream) -> tuple[int, int]:
    """Upright size in square pixels: turned by the rotation, widened by the pixel aspect."""
    w, h = stream.width, stream.height
    if stream.rotation in (90, 270):
        w, h = h, w
    if stream.sar != 1:
        w = max(2, 2 * round(w * float(stream.sar) / 2))
    return w, h


def probe_video(path: str | Path, fps: float | None = None) -> VideoInfo:
    """What ``path`` holds and how it is read; a :class:`UserError` if it is not a clip.
    A folder of frames, a printf pattern (``frame_%04d.png``) or a glob (``shots/*.exr``) is a
    frame sequence (see :mod:`dreamvideo.media.sequence`), at ``fps`` (24 when not given); a
    clip keeps its own rate."""
    path = Path(path)
    if is_sequence(path):
        return probe_sequence(path, fps)
    if fps is not None:
        raise UserError(
            f"video.fps / --fps is for frame folders: {path_text(path)} is a clip, rendered "
            "at its own rate"
        )
    try:
        if not path.is_file():
            raise UserError(f"input file {path_text(path)} does not exist")
    except OSError as e:
        raise UserError(f"input {path_text(path)}: {e.strerror or e}") from None
    desc = parse_description(describe(path))
    stream = desc.video
    if stream is None:
        raise UserError(
            f"{path_text(path)} is not a video (ffmpeg finds no video stream in it; try "
            "converting it to MP4)"
        )
    if stream.hdr and not (stream.mastering or stream.light):  # in the frames, maybe
        said = first_frame_info(path, stream.index)
        stream = replace(stream, mastering=mastering_display(said), light=light_level(said))
    timing = _timing(path, stream)
    vfr = timing is not None and timing.uneven
    # OpenCV reads a file's first video stream; another (a thumbnail came first) needs ffmpeg
    needs_ffmpeg = (
        stream.interlaced or stream.hdr or stream.sar != 1 or stream.alpha or vfr or stream.index
    )
    rate = timing.rate if timing is not None else exact_fps(float(stream.fps or stream.tbr or 0))
    start = (stream.start or 0.0) - (desc.start or 0.0)  # the sound may begin before it
    info = VideoInfo(
        path,
        *_display_size(stream),
        rate,
        0,
        stream.rotation,
        desc.audio_streams > 0,
        desc.duration,
        stream,
        "ffmpeg" if needs_ffmpeg else "opencv",
        vfr,
        desc.audio_streams,
        desc.subtitle_streams,
        alpha=stream.alpha,
        depth=stream.depth,
        start=max(0.0, start),
    )
    info = _with_opencv(info) if info.reader == "opencv" else _with_ffmpeg(info)
    if not info.fps or info.fps > 1000:
        raise UserError(f"{path_text(path)}: cannot tell its frame rate ({float(info.fps):g})")
    return info


def _with_ffmpeg(info: VideoInfo) -> VideoInfo:
    """``info`` for the ffmpeg reader: its frame count from the duration, its first frame
    checked to decode."""
    count = round(info.duration * info.fps) if info.duration else 0
    try:
        first = next(read_frames(info, 0, 1), None)
    except EncodeError:
        first = None
    if first is None:
        raise UserError(
            f"{path_text(info.path)} has no readable video frames (truncated or not a video)"
        )
    return replace(info, frame_count=count)


def _with_opencv(info: VideoInfo) -> VideoInfo:
    """``info`` for OpenCV, or for ffmpeg where OpenCV cannot open the clip or decodes its
    first frame differently from ffmpeg (a decoder that hands back black or garbled frames)."""
    cap = cv2.VideoCapture(file_arg(info.path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return _with_ffmpeg(replace(info, reader="ffmpeg"))
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        ok, frame = cap.read()
        fps, count = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    if not ok or frame is None:  # OpenCV's own ffmpeg lacks a decoder (AV1), or the file is cut
        return _with_ffmpeg(replace(info, reader="ffmpeg"))
    info = replace(info, width=frame.shape[1], height=frame.shape[0], frame_count=max(count, 0))
    if fps and not info.fps:
        info = replace(info, fps=exact_fps(fps))
    reference = next(read_frames(replace(info, reader="ffmpeg"), 0, 1), None)
    mine = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    if reference is None or reference[1].shape != mine.shape:
        return info
    if float(np.abs(reference[1].astype(np.float32) - mine).mean()) > DECODE_MISMATCH:
        return _with_ffmpeg(replace(info, reader="ffmpeg"))
    return info


# --------------------------------------------------------------------------- reading


def read_frames(
    source: str | Path | VideoInfo,
    first: int = 0,
    last: int | None = None,
    size: tuple[int, int] | None = None,
    *,
    alpha: bool = False,
    deep: bool = False,
    hdr: str = "sdr",
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, frame)`` for frames ``first`` .. ``last`` (exclusive): ``(H,W,3)``
    uint8 RGB, ``(H,W,4)`` RGBA with ``alpha`` (opaque where the source has none), and
    uint16 (0..65535) with ``deep`` where the source has more than 8 bits.

    Frames are read one at a time until the clip ends (the header's frame count is not
    trusted), turned upright and resized to ``size`` = (w, h) (area averaging to shrink).
    Frames before ``first`` are decoded and dropped: seeking in compressed video is not
    frame-exact, and resumed renders must see exactly the same frames. ``hdr``: an HDR
    source as SDR (``"sdr"``) or as its own signal (``"keep"``, deep).
    """
    info = source if isinstance(source, VideoInfo) else probe_video(source)
    if info.reader == "frames":
        frames = read_sequence(info, first, last, size, alpha, deep)
    elif info.reader == "ffmpeg" or (deep and info.depth > 8) or (alpha and info.alpha):
        frames = _ffmpeg_frames(info, first, last, size, alpha, deep and info.depth > 8, hdr)
    else:
        frames = _opencv_frames(info.path, first, last, size)
    if alpha and info.reader == "opencv":
        frames = ((k, _opaque(f)) for k, f in frames)
    yield from frames


def _opaque(rgb: np.ndarray) -> np.ndarray:
    top = 65535 if rgb.dtype == np.uint16 else 255
    return np.dstack([rgb, np.full(rgb.shape[:2], top, rgb.dtype)])


def _opencv_frames(
    path: Path, first: int, last: int | None, size: tuple[int, int] | None
) -> Iterator[tuple[int, np.ndarray]]:
    cap = cv2.VideoCapture(file_arg(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise UserError(f"{path_text(path)} is not a video OpenCV can open")
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


# HDR -> SDR BT.709 with zscale: linear light (100 nits = SDR white), BT.709 primaries, the
# Mobius tone map, the BT.709 curve. Mobius keeps what lies within SDR's range as it is and
# rolls off only what lies above it; measured on HLG and PQ made from an SDR clip, it comes
# back at a mean CIE76 difference of 4.1-4.4 from the original, where Hable's curve (the usual
# recipe) darkens everything (21.6) and Reinhard's dulls it (8.1)
_TO_SDR = (
    "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
    "tonemap=tonemap=mobius,zscale=t=bt709:m=bt709:r=pc"
)


def ffmpeg_filters(info: VideoInfo, size: tuple[int, int], hdr: str = "sdr") -> list[str]:
    """The filters that turn ``info``'s stored frames into upright, progressive, constant-rate
    frames of ``size`` in square pixels (and SDR, unless ``hdr`` is "keep")."""
    s, chain = info.stream, []
    if s is not None and s.interlaced:
        chain.append("bwdif=mode=send_frame:parity=auto:deint=all")
    if info.vfr:
        chain.append(f"fps={info.fps}")
    if info.hdr and hdr == "sdr":
        chain.append(_TO_SDR)
    shrink = s is not None and size[0] * size[1] < s.width * s.height
    chain.append(f"scale={size[0]}:{size[1]}:flags={'area' if shrink else 'bicubic'}")
    chain.append("setsar=1")
    return chain


def _ffmpeg_frames(
    info: VideoInfo,
    first: int,
    last: int | None,
    size: tuple[int, int] | None,
    alpha: bool,
    deep: bool,
    hdr: str,
) -> Iterator[tuple[int, np.ndarray]]:
    w, h = size or (info.width, info.height)
    channels = 4 if alpha else 3
    pix_fmt = {(3, False): "rgb24", (4, False): "rgba", (3, True): "rgb48le",
               (4, True): "rgba64le"}[channels, deep]  # fmt: skip
    dtype = np.dtype("<u2") if deep else np.dtype(np.uint8)
    s = info.stream
    # ffmpeg's own VP9 decoder drops the alpha that WebM keeps beside the picture
    decoder = ["-c:v", "libvpx-vp9"] if s is not None and s.codec == "vp9" and s.alpha else []
    index = s.index if s is not None else 0
    args = [*decoder, "-i", file_arg(info.path), "-map", f"0:v:{index}", "-an", "-sn"]
    args += ["-vf", ",".join(ffmpeg_filters(info, (w, h), hdr)), "-pix_fmt", pix_fmt]
    if last is not None:
        args += ["-frames:v", str(last)]
    frame_bytes = w * h * channels * dtype.itemsize
    frames = raw_frames(args, frame_bytes, f"decoding {info.path}")
    with contextlib.closing(frames):
        for index, raw in enumerate(frames):
            if index >= first:
                yield index, np.frombuffer(raw, dtype).reshape(h, w, channels).copy()
