"""The text form of masks and regions, shared by the CLI, presets and the studio.

A mask SOURCE says where to dream (white) and where to keep the source (black)::

    matte.png            a picture: a still matte (for a clip it stays fixed in the frame)
    matte.mp4 / folder/  a clip or frame folder (or m_%04d.png, "m/*.png"): one matte frame
                         per source frame
    alpha                the input's own alpha channel
    luma:0.6-1           a luma key of each source frame: dream where its luma is in 0.6..1
    key:#20a040/60       a colour key: dream within 60 (RGB distance, 0..441) of #20a040

Regions name such sources for ``region(NAME, TERM)`` objectives: ``"sky=luma:0.6-1;
ground=luma:0-0.6"`` (``dream.regions``; ``--region NAME=SOURCE`` on the command line).
Only the syntax lives here (no files are opened), so configs are checked when they load.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from dreamvideo.errors import UserError
from dreamvideo.text import excerpt, number

KEY_TOLERANCE = 40.0  # RGB distance a colour key accepts when none is given
MAX_DISTANCE = math.sqrt(3) * 255  # the largest RGB distance: black to white
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
ACCEPTED = "a picture, a clip or frame folder, alpha, luma:LOW-HIGH or key:#RRGGBB[/TOLERANCE]"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LUMA = re.compile(r"luma:([^-]*)-(.*)", re.DOTALL)  # the bounds are numbers by text.NUMBER
_KEY = re.compile(r"key:\s*#([0-9a-fA-F]{6})(?:\s*/(.*))?", re.DOTALL)


@dataclass(frozen=True)
class MatteSource:
    """Where a matte comes from: ``kind`` is "picture", "clip", "alpha", "luma" or "key"."""

    kind: str
    text: str  # as the user wrote it, for messages
    path: str | None = None  # picture / clip
    low: float = 0.0  # luma key, 0..1
    high: float = 1.0
    color: tuple[int, int, int] = (0, 0, 0)  # colour key
    tolerance: float = KEY_TOLERANCE  # colour key, RGB distance


def parse_matte(text: str, key: str = "dream.mask") -> MatteSource:
    """``text`` as a :class:`MatteSource`; :class:`UserError` names ``key`` and the syntax."""
    text = text.strip()
    where = f"{key} {excerpt(text)}"
    if text == "alpha":
        return MatteSource("alpha", text)
    if text.startswith("luma:"):
        m = _LUMA.fullmatch(text)
        low, high = (number(m.group(1)), number(m.group(2))) if m else (None, None)
        if low is None or high is None:
            raise UserError(
                f"{where}: a luma key is luma:LOW-HIGH with numbers 0 <= LOW < HIGH <= 1, "
                "such as luma:0.6-1"
            )
        if not 0.0 <= low < high <= 1.0:
            raise UserError(
                f"{where}: luma bounds must satisfy 0 <= LOW < HIGH <= 1, got {low:g}-{high:g}"
            )
        return MatteSource("luma", text, low=low, high=high)
    if text.startswith("key:"):
        m = _KEY.fullmatch(text)
        tol = None if m is None else KEY_TOLERANCE if m.group(2) is None else number(m.group(2))
        if m is None or tol is None:
            raise UserError(
                f"{where}: a colour key is key:#RRGGBB or key:#RRGGBB/TOLERANCE with a number "
                "for the tolerance, such as key:#20a040/60"
            )
        rgb = m.group(1)
        if not 0.0 < tol <= MAX_DISTANCE:
            raise UserError(
                f"{where}: tolerance {tol:g} is out of range; give an RGB distance in "
                f"0 < TOLERANCE <= {MAX_DISTANCE:.0f}"
            )
        color = (int(rgb[0:2], 16), int(rgb[2:4], 16), int(rgb[4:6], 16))
        return MatteSource("key", text, color=color, tolerance=tol)
    if not text:
        raise UserError(f"{key}: empty; give {ACCEPTED}")
    if ":" in text.split("/")[0] and not _exists(text):
        raise UserError(f"{where}: unknown kind of mask; give {ACCEPTED}")
    # a picture is one still matte; a clip, a frame folder, a printf pattern or a glob is one
    # matte per frame
    sequence = "%" in Path(text).name or any(c in Path(text).name for c in "*?[")
    picture = Path(text).suffix.lower() in PICTURE_SUFFIXES and not sequence
    return MatteSource("picture" if picture else "clip", text, path=text)


def _exists(text: str) -> bool:
    """Whether a file or folder is at ``text`` (a name too long to be one is not)."""
    try:
        return Path(text).exists()
    except OSError:
        return False


def parse_regions(text: str | None, key: str = "dream.regions") -> dict[str, MatteSource]:
    """``"NAME=SOURCE; NAME=SOURCE"`` as name -> source, in order; names are identifiers."""
    if text is None or not text.strip():
        return {}
    regions: dict[str, MatteSource] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, eq, source = part.partition("=")
        name = name.strip()
        if not eq or not _NAME.fullmatch(name):
            raise UserError(
                f"{key} {excerpt(part)}: a region is NAME=SOURCE with a name like sky or "
                f"ground, e.g. sky=luma:0.6-1"
            )
        if name in regions:
            raise UserError(f"{key}: region {name!r} is given twice")
        regions[name] = parse_matte(source, f"{key} {name}")
    return regions


def join_regions(pairs: list[str]) -> str | None:
    """Repeated ``--region NAME=SOURCE`` flags as one ``dream.regions`` text."""
    return "; ".join(p.strip() for p in pairs) if pairs else None


def reads_alpha(mask: str | None, regions: str | None) -> bool:
    """Whether the mask or a region is the input's own alpha channel."""
    sources = [*([parse_matte(mask)] if mask else []), *parse_regions(regions).values()]
    return any(source.kind == "alpha" for source in sources)
