"""One render's mattes, frame by frame: the mask (``dream.mask``) and the named regions
(``dream.regions``), read from pictures and clips or keyed from each source frame.

Every matte comes out as ``(H,W)`` float32 in [0,1] at the render's frame size; a file that
does not fit (missing, another shape, too short, black everywhere) is one line naming it and
what would fit, before anything is dreamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dreamvideo.engine.masks import MASK, color_key, finish, luma, luma_key, region_key, unit_rgb
from dreamvideo.errors import UserError
from dreamvideo.masks import MatteSource, parse_matte, parse_regions

if TYPE_CHECKING:
    from dreamvideo.media.probe import VideoInfo

ASPECT_SLACK = 0.01  # a matte within 1 % of the frames' aspect is scaled to fit
EMPTY = 1.0 / 255.0  # a matte no brighter than this anywhere dreams nothing


def _fit(matte: np.ndarray, size: tuple[int, int], what: str) -> np.ndarray:
    """``matte`` ``(h,w)`` scaled to ``size`` = (W, H); another aspect is an error. A matte
    made at the source's size fits frames whose side was rounded (to even, when the render
    is narrower): within a pixel, or within 1 %, the aspect is the same."""
    import cv2

    h, w = matte.shape
    if (w, h) == size:
        return matte
    want, got = size[0] / size[1], w / h
    rounded = min(abs(h * size[0] / w - size[1]), abs(w * size[1] / h - size[0])) <= 1.0
    if not rounded and abs(got - want) > ASPECT_SLACK * want:
        raise UserError(
            f"{what} is {w}x{h} but the frames are {size[0]}x{size[1]}; give a matte of the "
            f"same shape (aspect {want:.3f}, it has {got:.3f})"
        )
    shrink = w > size[0]
    return cv2.resize(matte, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _there(path: Path, what: str) -> bool:
    """Whether a file or folder is at ``path``; a name the system cannot take (too long) is
    one line."""
    try:
        return path.exists()
    except OSError as e:
        raise UserError(f"{what}: {e.strerror or e}") from None


class Mattes:
    """The mattes of one render at frames of ``size`` = (W, H).

    ``mask`` (``dream.mask`` text) is inverted and feathered as asked; ``regions``
    (``dream.regions`` text) are used as they are. ``needed``:
    one past the last source frame the render reads (a matte clip must be that long);
    ``alpha``: whether the input has an alpha channel; ``input``: its name, for messages;
    ``loop``: a matte clip starts again at its end (a live source has no end).
    """

    def __init__(
        self,
        mask: str | None,
        regions: str | None,
        size: tuple[int, int],
        *,
        invert: bool = False,
        feather: float = 0.0,
        needed: int | None = None,
        alpha: bool = False,
        input: str = "the input",  # noqa: A002
        loop: bool = False,
    ) -> None:
        self.sources = {MASK: parse_matte(mask)} if mask else {}
        self.sources.update({region_key(n): s for n, s in parse_regions(regions).items()})
        self.size, self.invert, self.feather, self.loop = size, invert, feather, loop
        self._still: dict[str, np.ndarray] = {}
        self._clips: dict[str, VideoInfo] = {}
        self._readers: dict[str, Iterator[tuple[int, np.ndarray]]] = {}
        self._read: dict[str, int] = {}  # the last frame each matte clip's reader gave
        for key, src in self.sources.items():
            what = self._what(key)
            if src.kind == "alpha" and not alpha:
                raise UserError(
                    f"{what}: {input} has no alpha channel; give a picture or clip matte, "
                    "or a luma or colour key"
                )
            if src.kind == "picture":
                self._still[key] = self._shaped(key, self._picture(src, what))
            elif src.kind == "clip":
                self._clips[key] = self._clip(src, what, needed)

    def _what(self, key: str) -> str:
        src = self.sources[key]
        label = "mask" if key == MASK else f"region {key.removeprefix('region:')}"
        return f"{label} {src.text}"

    def _picture(self, src: MatteSource, what: str) -> np.ndarray:
        from dreamvideo.media.images import read_image

        path = Path(src.path or "")
        if not _there(path, what):
            raise UserError(f"{what}: no such file; give a picture, a clip or frame folder")
        return _fit(luma(read_image(path)), self.size, what)

    def _clip(self, src: MatteSource, what: str, needed: int | None) -> VideoInfo:
        from dreamvideo.media.frames import probe_video
        from dreamvideo.media.sequence import is_sequence

        path = Path(src.path or "")
        if not (is_sequence(path) or _there(path, what)):
            raise UserError(
                f"{what}: no such file or folder; give a picture, a clip or frame folder"
            )
        info = probe_video(path)
        _fit(np.zeros((info.height, info.width), np.float32), self.size, what)
        if needed is not None and info.frame_count and info.frame_count < needed:
            raise UserError(
                f"{what} has {info.frame_count} frames but the render needs {needed}; give a "
                "matte clip as long as the input (one matte frame per source frame)"
            )
        return info

    def _shaped(self, key: str, matte: np.ndarray) -> np.ndarray:
        if key != MASK:
            return np.clip(matte, 0.0, 1.0).astype(np.float32)
        return finish(matte, self.invert, self.feather)

    def _from_clip(self, key: str, index: int) -> np.ndarray:
        from dreamvideo.media.frames import read_frames

        count = self._clips[key].frame_count
        if self.loop and count:
            index %= count
            if index <= self._read.get(key, -1):  # round again: read it from the start
                self._readers.pop(key, None)
        reader = self._readers.get(key)
        if reader is None:
            reader = self._readers[key] = read_frames(self._clips[key], index, None, self.size)
        for k, rgb in reader:
            if k == index:
                self._read[key] = k
                return luma(rgb)
        raise UserError(
            f"{self._what(key)} ends before source frame {index}; give a matte clip as long "
            "as the input"
        )

    def at(self, index: int, frame: np.ndarray, alpha: np.ndarray | None) -> dict[str, np.ndarray]:
        """Every matte of source frame ``index`` (``frame``: its ``(H,W,3)`` RGB, ``alpha``:
        its ``(H,W)`` alpha or ``None``), keyed ``"mask"`` and ``"region:NAME"``."""
        out = {}
        for key, src in self.sources.items():
            if key in self._still:
                out[key] = self._still[key]
                continue
            if src.kind == "clip":
                raw = self._from_clip(key, index)
            elif src.kind == "alpha":
                assert alpha is not None, "alpha mattes need the frames' alpha"
                raw = unit_rgb(alpha[..., None])[..., 0]
            elif src.kind == "luma":
                raw = luma_key(frame, src.low, src.high)
            else:
                raw = color_key(frame, src.color, src.tolerance)
            out[key] = self._shaped(key, raw)
        return out

    def check(self, index: int, frame: np.ndarray, alpha: np.ndarray | None) -> None:
        """A mask that dreams nothing in the first frame is a mistake (an empty alpha, a key
        of a colour the frame lacks): one line, before anything is dreamed."""
        mattes = self.at(index, frame, alpha)
        for key, matte in mattes.items():
            if float(matte.max()) <= EMPTY:
                raise UserError(
                    f"{self._what(key)} is black everywhere in the first frame, so nothing "
                    "would be dreamed; check the matte"
                    + (", or use --mask-invert" if key == MASK else "")
                )
        self._readers.clear()  # the render reads its clips afresh
        self._read.clear()


def mattes_for(
    mask: str | None, regions: str | None, size: tuple[int, int], **options: Any
) -> Mattes | None:
    """The :class:`Mattes` of ``dream.mask`` and ``dream.regions`` (``options`` as for it);
    ``None`` without either."""
    if not mask and not parse_regions(regions):
        return None
    return Mattes(mask, regions, size, **options)
