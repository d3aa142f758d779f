"""What a clip holds, read from ffmpeg's own description of it (``ffmpeg -i``; the bundled
ffmpeg has no ffprobe): the clip's video stream (the one ffmpeg itself would pick: no cover
picture) with its pixel format, colour tags, HDR metadata, field order, pixel aspect, start
and alpha, and how many sound and subtitle streams come with it; its exact frame rate from
its timestamps (:func:`frame_rate`); and :class:`VideoInfo`, what a render needs to know of
a clip or a frame folder. Pure: :func:`dreamvideo.media.ffmpeg.describe` and
:func:`dreamvideo.media.ffmpeg.packet_times` run ffmpeg.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

# pixel formats that carry an alpha channel (GIF frames arrive as bgra or pal8)
_ALPHA = re.compile(r"^(yuva|rgba|bgra|argb|abgr|gbrap|ya\d|pal8)")
# transfer functions of HDR video: HLG (phones, broadcast) and PQ (HDR10, Dolby Vision base)
HDR_TRANSFERS = {"arib-std-b67": "hlg", "smpte2084": "pq"}
_INTERLACED = ("top first", "bottom first", "top coded first", "bottom coded first")


@dataclass(frozen=True)
class VideoStream:
    """The first video stream of a file, as ffmpeg describes it."""

    codec: str  # "h264", "hevc", "prores", "vp9", "gif", ...
    pix_fmt: str  # "yuv420p", "yuv420p10le", "yuva444p12le", "bgra", ...
    width: int  # coded pixels, before rotation and pixel aspect
    height: int
    sar: Fraction = Fraction(1)  # width of one pixel over its height
    fps: Fraction | None = None  # the average rate ffmpeg reports ("29.97 fps")
    tbr: Fraction | None = None  # its guess of the base rate ("30 tbr")
    range: str | None = None  # "tv" (limited) or "pc" (full)
    matrix: str | None = None  # "bt709", "bt2020nc", "smpte170m", ...
    primaries: str | None = None
    transfer: str | None = None  # "bt709", "arib-std-b67" (HLG), "smpte2084" (PQ), ...
    field_order: str | None = None  # "progressive", "top first", "bottom first", ...
    alpha_mode: bool = False  # VP9/AV1 in WebM/MKV keep alpha beside the picture
    rotation: int = 0  # degrees the display turns the stored picture clockwise (0, 90, 180, 270)
    index: int = 0  # which video stream of the file it is (ffmpeg's 0:v:INDEX)
    start: float | None = None  # seconds: the stream's first timestamp ("start 0.067")
    attached: bool = False  # a cover picture or thumbnail, not the clip
    mastering: str | None = None  # HDR10 mastering display, x265's master-display syntax
    light: tuple[int, int] | None = None  # HDR10 MaxCLL, MaxFALL (nits)

    @property
    def alpha(self) -> bool:
        return self.alpha_mode or bool(_ALPHA.match(self.pix_fmt))

    @property
    def depth(self) -> int:
        """Bits per channel: 8, or 10, 12, 16 for deep formats; 32 for float."""
        if "f32" in self.pix_fmt or "f16" in self.pix_fmt:
            return 32
        m = re.search(r"(9|10|12|14|16)(le|be)$", self.pix_fmt)
        return int(m.group(1)) if m else (16 if self.pix_fmt.endswith("48le") else 8)

    @property
    def hdr(self) -> str | None:
        """ "hlg" or "pq" for HDR video, else ``None``."""
        return HDR_TRANSFERS.get(self.transfer or "")

    @property
    def interlaced(self) -> bool:
        return (self.field_order or "").startswith(_INTERLACED)


@dataclass(frozen=True)
class Description:
    """Everything ``ffmpeg -i FILE`` says that a render needs."""

    video: VideoStream | None  # the clip's picture: the stream ffmpeg itself would pick
    audio_streams: int
    subtitle_streams: int
    duration: float | None  # seconds, from the container
    start: float | None = None  # seconds: the file's first timestamp (of any stream)


def _rate(text: str | None) -> Fraction | None:
    """``"29.97"`` -> 29.97 as a fraction, ``"30k"`` -> 30000; ``None`` when absent."""
    if not text:
        return None
    scale = 1000 if text.endswith("k") else 1
    try:
        return Fraction(text.rstrip("k")) * scale
    except ValueError:
        return None


def _props(text: str) -> dict[str, str]:
    """The parenthesised list after a pixel format: ``tv, bt2020nc/bt2020/arib-std-b67,
    progressive`` -> range, matrix, primaries, transfer and field order."""
    found: dict[str, str] = {}
    for item in (p.strip() for p in text.split(",")):
        if item in ("tv", "pc"):
            found["range"] = item
        elif item.startswith(("progressive", *_INTERLACED)):
            found["field_order"] = item
        elif item and item != "unknown":
            parts = item.split("/")
            if len(parts) == 3:
                found.update(zip(("matrix", "primaries", "transfer"), parts, strict=True))
            else:  # one name stands for all three
                found.update(matrix=item, primaries=item, transfer=item)
    return {k: v for k, v in found.items() if v != "unknown"}


_VIDEO = re.compile(
    r"Stream #\d+:\d+\S*: Video: (?P<codec>[^\s,]+)[^,]*, (?P<pix>[a-z0-9_]+)"
    r"(?:\((?P<props>(?:[^()]|\([^()]*\))*)\))?, (?P<w>\d+)x(?P<h>\d+)"
)


# codecs of still pictures: a video stream of one of these beside a real one is a thumbnail
STILL_CODECS = ("png", "mjpeg", "bmp", "tiff", "webp", "gif")


def _pick(videos: list[VideoStream]) -> VideoStream | None:
    """The clip among a file's video streams, as ffmpeg picks it: not a cover picture, not a
    still-picture codec where a moving one is there, the most pixels, the first of equals."""
    moving = [v for v in videos if not v.attached]
    if any(v.codec not in STILL_CODECS for v in moving):
        moving = [v for v in moving if v.codec not in STILL_CODECS]
    return max(moving, key=lambda v: (v.width * v.height, -v.index), default=None)


def parse_description(text: str) -> Description:
    """:class:`Description` of ffmpeg's ``-i`` output ``text`` (its stderr)."""
    lines = text.splitlines()
    videos, audio, subtitles = [], 0, 0
    for k, line in enumerate(lines):
        if re.search(r"Stream #\d+:\d+\S*: Audio:", line):
            audio += 1
        elif re.search(r"Stream #\d+:\d+\S*: Subtitle:", line):
            subtitles += 1
        elif m := _VIDEO.search(line):
            videos.append(_video(m, line, _block(lines, k + 1), len(videos)))
    d = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    duration = int(d.group(1)) * 3600 + int(d.group(2)) * 60 + float(d.group(3)) if d else None
    begins = re.search(r"Duration: [^\n]*?start: (-?[\d.]+)", text)
    start = float(begins.group(1)) if begins else None
    return Description(_pick(videos), audio, subtitles, duration, start)


def _block(lines: list[str], start: int) -> str:
    """The metadata and side data printed under a stream, up to the next stream."""
    out = []
    for line in lines[start:]:
        if "Stream #" in line:
            break
        out.append(line)
    return "\n".join(out)


def _video(m: re.Match[str], line: str, below: str, index: int) -> VideoStream:
    sar = re.search(r"SAR (\d+):(\d+)", line)
    aspect = Fraction(int(sar.group(1)), int(sar.group(2))) if sar and int(sar.group(2)) else 1
    fps = re.search(r", ([\d.]+k?) fps", line)
    tbr = re.search(r", ([\d.]+k?) tbr", line)
    turn = re.search(r"rotation of (-?[\d.]+) degrees", below)
    alpha = re.search(r"alpha_mode\s*:\s*1", below)
    start = re.search(r", start (-?[\d.]+)", line)
    return VideoStream(
        codec=m.group("codec"),
        pix_fmt=m.group("pix"),
        width=int(m.group("w")),
        height=int(m.group("h")),
        sar=Fraction(aspect) if aspect else Fraction(1),
        fps=_rate(fps.group(1) if fps else None),
        tbr=_rate(tbr.group(1) if tbr else None),
        # the display matrix turns counter-clockwise by -rotation degrees
        rotation=round(-float(turn.group(1))) % 360 if turn else 0,
        alpha_mode=bool(alpha),
        index=index,
        start=float(start.group(1)) if start else None,
        attached="(attached pic)" in line,
        mastering=mastering_display(below),
        light=light_level(below),
        **_props(m.group("props") or ""),
    )


def mastering_display(text: str) -> str | None:
    """HDR10's mastering display as ffmpeg prints it (under a stream, or a frame's side data
    in ``showinfo``), in x265's ``master-display`` syntax: G(x,y)B(x,y)R(x,y)WP(x,y)L(max,
    min), chromaticities in units of 0.00002 and luminance in 0.0001 nits."""
    pair = r"\(([\d.]+)[,\s]+([\d.]+)\)\s*"
    m = re.search(
        rf"Mastering display metadata.*?r{pair}g{pair}b{pair}wp{pair}"
        r"min_luminance=([\d.]+),\s*max_luminance=([\d.]+)",
        text,
        re.DOTALL | re.IGNORECASE,
    )
    if not m:
        return None
    rx, ry, gx, gy, bx, by, wx, wy = (round(float(v) / 0.00002) for v in m.groups()[:8])
    low, high = (round(float(v) * 10000) for v in m.groups()[8:])
    return f"G({gx},{gy})B({bx},{by})R({rx},{ry})WP({wx},{wy})L({high},{low})"


def light_level(text: str) -> tuple[int, int] | None:
    """HDR10's content light level (MaxCLL, MaxFALL in nits), as ffmpeg prints it."""
    m = re.search(r"MaxCLL=(\d+),\s*MaxFALL=(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class VideoInfo:
    """What a clip's headers say. ``frame_count`` is an estimate, for progress bars only."""

    path: Path
    width: int  # display pixels: upright, square (non-square pixels are scaled)
    height: int
    fps: Fraction  # exact rate, e.g. 30000/1001 (a variable rate's nominal one)
    frame_count: int
    rotation: int  # degrees the stored frames are turned clockwise to be upright
    has_audio: bool
    duration: float | None  # seconds, from the container
    stream: VideoStream | None = None  # the video stream, as ffmpeg describes it
    reader: str = "opencv"  # "opencv", "ffmpeg" (a filtered pipe) or "frames" (a folder)
    vfr: bool = False  # variable frame rate, made constant at ``fps`` by the reader
    audio_streams: int = 0
    subtitle_streams: int = 0
    files: tuple[Path, ...] = field(default=(), repr=False)  # a frame folder's frames
    alpha: bool = False  # the frames carry an alpha channel
    depth: int = 8  # bits per channel of the source; 32 for float
    start: float = 0.0  # seconds from the file's start to its first picture (sound may lead)

    @property
    def hdr(self) -> str | None:
        return self.stream.hdr if self.stream is not None else None

    def notes(self, hdr: str = "sdr") -> list[str]:
        """What reading the source does to it, said once before a render."""
        s = self.stream
        said = []
        if s is not None and s.interlaced:
            said.append(f"interlaced ({s.field_order}): deinterlaced with bwdif")
        if self.hdr:
            said.append(
                f"HDR ({self.hdr.upper()}): dreamed in SDR BT.709 after a tone map"
                if hdr == "sdr"
                else f"HDR ({self.hdr.upper()}): kept as HDR (encode.hdr keep)"
            )
        if s is not None and s.sar != 1:
            said.append(
                f"non-square pixels (SAR {s.sar.numerator}:{s.sar.denominator}): dreamed at "
                f"{self.width}x{self.height}, the display aspect"
            )
        if self.vfr:
            said.append(
                f"frames at uneven times (a variable rate, or timestamps that jitter): rendered "
                f"at a constant {float(self.fps):.3f} fps, each frame at its own time, frames "
                "repeated or dropped so the sound stays in sync"
            )
        return said


def exact_fps(fps: float) -> Fraction:
    """A rate given as a number (``--fps``) as a fraction: 25.0 -> 25, 29.97002997 ->
    30000/1001 (NTSC rates exactly). A clip's own rate comes from its timestamps instead
    (:func:`frame_rate`): a printed rounding such as "23.98" is not the rate."""
    for den in (1, 1001):
        num = round(fps * den)
        if num and abs(num / den - fps) < 1e-5 * fps:  # relative: 0.1 fps is not 100/1001
            return Fraction(num, den)
    return Fraction(fps).limit_denominator(1001)


# rates cameras, phones and editors write; a clip's measured average within its timestamps'
# precision of one of these is that rate exactly
STANDARD_RATES = tuple(
    Fraction(r)
    for r in ("24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60",
              "100", "120000/1001", "120", "12", "15", "8", "10", "12.5")
)  # fmt: skip
VFR_SPREAD = 0.05  # frame intervals this far from their median make a clip's frames uneven
JITTER = 0.03  # an average rate this close to the usual step's: the same rate, jittered
SLACK = Fraction(1, 100_000)  # relative: a rate measured this close to a standard one is it


@dataclass(frozen=True)
class Timing:
    """A clip's frame rate, as its timestamps say."""

    rate: Fraction  # exact (even steps), or the average snapped to a standard rate
    uneven: bool  # the frames do not come at even times (a variable rate, or jitter)


def frame_rate(ticks: list[int], base: Fraction) -> Timing | None:
    """The rate of frames at ``ticks`` (presentation times in units of ``base`` seconds,
    ascending). Exact where every step is the same (24000/1001 from steps of 1001 at
    1/24000, never the printed "23.98"). Where the steps differ: timestamps that only jitter
    (a phone or screen recorder: each frame a few ms off) or are rounded to the time base
    (1 ms rounds 23.976 fps to steps of 41 and 42) average out to the rate, within their
    precision of a standard rate; a rate that really changes (a phone that drops from 50 to
    25 fps in low light) keeps its usual step's rate, frames repeated where it slows down.
    ``None`` with fewer than two frames."""
    steps = [b - a for a, b in zip(ticks, ticks[1:], strict=False) if b > a]
    if not steps:
        return None
    typical = sorted(steps)[len(steps) // 2]
    spread = max(abs(s - typical) for s in steps)
    uneven = spread > VFR_SPREAD * typical
    if spread == 0:
        return Timing(1 / (typical * base), False)
    span = ticks[-1] - ticks[0]
    # the usual step: the steps near the median, averaged (jitter and rounding cancel out)
    near = [s for s in steps if abs(s - typical) <= typical / 4]
    usual = len(near) / (sum(near) * base)
    average = len(steps) / (span * base)
    if abs(average / usual - 1) > JITTER:  # a rate that changes: its usual step's rate
        return Timing(_standard(usual, spread / sum(near) + SLACK), uneven)
    # the average, known as well as the first and last frames' times are: each is off by at
    # most half the spread of the steps (their rounding, or their jitter)
    return Timing(_standard(average, spread / span + SLACK), uneven)


def _standard(rate: Fraction, slack: Fraction) -> Fraction:
    """The standard rate within the relative ``slack`` of ``rate`` (the simplest where the
    timestamps cannot tell 24 from 24000/1001, then the nearest), else ``rate`` as
    :func:`exact_fps` writes it."""
    near = [(r.denominator, abs(r / rate - 1), r) for r in STANDARD_RATES
            if abs(r / rate - 1) <= slack]  # fmt: skip
    return min(near)[2] if near else exact_fps(float(rate))
