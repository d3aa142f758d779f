"""What a clip holds, read from ffmpeg's own description of it (``ffmpeg -i``; the bundled
ffmpeg has no ffprobe): the first video stream's pixel format, colour tags, field order,
pixel aspect, rates and alpha, and how many sound and subtitle streams come with it. Pure
text parsing; :func:`dreamvideo.media.ffmpeg.describe` runs ffmpeg.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

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

    video: VideoStream | None
    audio_streams: int
    subtitle_streams: int
    duration: float | None  # seconds, from the container


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


def parse_description(text: str) -> Description:
    """:class:`Description` of ffmpeg's ``-i`` output ``text`` (its stderr)."""
    lines = text.splitlines()
    video, audio, subtitles = None, 0, 0
    for k, line in enumerate(lines):
        if re.search(r"Stream #\d+:\d+\S*: Audio:", line):
            audio += 1
        elif re.search(r"Stream #\d+:\d+\S*: Subtitle:", line):
            subtitles += 1
        elif video is None and (m := _VIDEO.search(line)):
            video = _video(m, line, _block(lines, k + 1))
    d = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    duration = int(d.group(1)) * 3600 + int(d.group(2)) * 60 + float(d.group(3)) if d else None
    return Description(video, audio, subtitles, duration)


def _block(lines: list[str], start: int) -> str:
    """The metadata and side data printed under a stream, up to the next stream."""
    out = []
    for line in lines[start:]:
        if "Stream #" in line:
            break
        out.append(line)
    return "\n".join(out)


def _video(m: re.Match[str], line: str, below: str) -> VideoStream:
    sar = re.search(r"SAR (\d+):(\d+)", line)
    aspect = Fraction(int(sar.group(1)), int(sar.group(2))) if sar and int(sar.group(2)) else 1
    fps = re.search(r", ([\d.]+k?) fps", line)
    tbr = re.search(r", ([\d.]+k?) tbr", line)
    turn = re.search(r"rotation of (-?[\d.]+) degrees", below)
    alpha = re.search(r"alpha_mode\s*:\s*1", below)
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
        **_props(m.group("props") or ""),
    )
