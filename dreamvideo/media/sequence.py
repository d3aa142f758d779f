"""Frame sequences in and out: a folder of frames, a printf pattern (``frame_%04d.png``) or
a glob (``"shots/*.exr"``), the way After Effects, Nuke, Blender and Resolve exchange work.

Frames are sorted naturally (``frame_2`` before ``frame_10``) and checked before any work: a
gap in the numbering, a frame of another size or one that cannot be read is one line naming
it. PNG and TIFF (8 and 16 bit), JPEG and WebP are read by OpenCV, EXR (half or float) by the
``openexr`` package (OpenCV's wheels no longer read EXR). EXR holds scene-linear light: it is
dreamed as sRGB, values above 1.0 clipped (said once), and written back as linear light.

Out, a printf pattern names the frames (``-o out/frame_%04d.png``): PNG and TIFF in 8 or 16
bits, JPEG and WebP in 8, EXR in 32-bit float (:mod:`dreamvideo.media.frame_folder` keeps
such a render resumable).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from dreamvideo.errors import UserError
from dreamvideo.media.probe import VideoInfo, exact_fps
from dreamvideo.names import FRAME_SUFFIXES
from dreamvideo.text import excerpt, path_text

DEFAULT_FPS = Fraction(24)  # frames carry no rate; --fps sets it
_PRINTF = re.compile(r"%(0?\d*)d")
_NUMBER = re.compile(r"(\d+)(?=\D*$)")  # the last number in a name


def is_sequence(path: Path) -> bool:
    """Whether ``path`` names frames rather than a clip: a folder, a printf pattern or a glob."""
    name = path.name
    return bool(_PRINTF.search(name)) or any(c in name for c in "*?[") or _is_dir(path)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def natural_key(path: Path) -> list[object]:
    """``frame_2`` before ``frame_10``: digits compare as numbers."""
    return [int(p) if p.isascii() and p.isdigit() else p.lower()
            for p in re.split(r"(\d+)", path.name)]  # fmt: skip


def frame_files(path: Path) -> list[Path]:
    """The frames ``path`` names, in order; a one-line error if there are none, or if one of
    them is not a regular file (a FIFO or a device would block the render on reading)."""
    if _is_dir(path):
        found = [p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES]
        found = [p for p in found if not p.name.startswith(".")]
        kinds = sorted({p.suffix.lower() for p in found})
        if len(kinds) > 1:
            raise UserError(
                f"{path_text(path)} holds {' and '.join(kinds)} frames; give a pattern such "
                f"as {path_text(path / ('%04d' + kinds[0]))}"
            )
    elif _PRINTF.search(path.name):
        found = written_frames(path)
    else:
        found = [Path(p) for p in glob.glob(str(path)) if not _is_dir(Path(p))]
    if not found:
        raise UserError(f"no frames found for {path_text(path)}")
    for p in found:
        if not p.is_file():  # follows links: a link to a frame is a frame
            raise UserError(
                f"frame {path_text(p)} is not a regular file (a pipe, a device or a broken "
                "link); move it away or give a pattern that leaves it out"
            )
    return sorted(found, key=natural_key)


def pattern_regex(pattern: Path) -> re.Pattern[str]:
    """The file names a printf pattern names: ``frame_%04d.png`` -> ``frame_\\d{4}\\.png``
    (``%d`` takes any number of digits), matched whole."""
    width = _PRINTF.search(pattern.name).group(1)  # type: ignore[union-attr]
    digits = rf"\d{{{int(width)}}}" if width.startswith("0") else r"\d+"
    return re.compile(
        "".join(digits if part is None else re.escape(part) for part in _split_printf(pattern.name))
    )


def _split_printf(name: str) -> list[str | None]:
    """``frame_%04d.png`` -> ``["frame_", None, ".png"]`` (None: the number)."""
    parts: list[str | None] = []
    for k, text in enumerate(_PRINTF.split(name)):
        if k % 2 == 0:
            parts.append(text)
        else:
            parts.append(None)
    return parts


def check_numbering(files: list[Path]) -> None:
    """Numbered frames must follow each other: a missing one is one line naming it."""
    numbers = [_NUMBER.search(p.stem) for p in files]
    if not all(numbers):
        return  # names without numbers: their order is the natural sort's
    values = [int(m.group(1)) for m in numbers]  # type: ignore[union-attr]
    for a, b, pa, pb in zip(values, values[1:], files, files[1:], strict=False):
        if b != a + 1:
            raise UserError(
                f"frame {a + 1} is missing: the numbering jumps from {path_text(pa)} to "
                f"{path_text(pb)}; put the missing frames back or renumber the files so they "
                "follow each other"
            )


def frame_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of one frame file, from its header alone."""
    try:
        if path.suffix.lower() == ".exr":
            with _exr().File(str(path), header_only=True) as f:  # type: ignore[attr-defined]
                (x0, y0), (x1, y1) = f.header()["dataWindow"]
                return int(x1 - x0 + 1), int(y1 - y0 + 1)
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except (OSError, RuntimeError, SyntaxError, ValueError, KeyError):
        raise UserError(
            f"frame {path_text(path)} cannot be read (truncated or not a picture)"
        ) from None


def probe_sequence(path: Path, fps: float | Fraction | None = None) -> VideoInfo:
    """A frame sequence as a clip: every frame's header checked (numbering, size), the rate
    ``fps`` (24 when not given), no sound."""
    files = frame_files(path)
    check_numbering(files)
    first = read_frame(files[0])
    h, w, channels = first.shape
    bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(first.dtype, 32)
    for f in files[1:]:
        fw, fh = frame_size(f)
        if (fw, fh) != (w, h):
            raise UserError(
                f"frame {path_text(f)} is {fw}x{fh} where the frames before are {w}x{h}; "
                "frames of a sequence share one size"
            )
    rate = exact_fps(float(fps)) if fps else DEFAULT_FPS
    return VideoInfo(
        path,
        w,
        h,
        rate,
        len(files),
        0,
        False,
        len(files) / float(rate),
        reader="frames",
        files=tuple(files),
        alpha=channels == 4,
        depth=bits,
    )


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Scene-linear light (0..1 and beyond) to sRGB-encoded values in 0..1 (clipped)."""
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """The inverse of :func:`srgb_encode` (for writing EXR)."""
    x = np.clip(encoded, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4))


def _exr() -> object:
    try:
        import OpenEXR
    except ImportError:
        raise UserError(
            "EXR frames need the openexr package: pip install 'dreamvideo[exr]'"
        ) from None
    return OpenEXR


def read_frame(path: Path) -> np.ndarray:
    """One frame file as ``(H,W,C)`` RGB(A): uint8 or uint16 as stored, float32 linear for
    EXR; a one-line error for a file that cannot be read."""
    if path.suffix.lower() == ".exr":
        exr = _exr()
        try:
            with exr.File(str(path)) as f:  # type: ignore[attr-defined]
                channels = f.channels()
                key = "RGBA" if "RGBA" in channels else "RGB" if "RGB" in channels else None
                if key is None:
                    grey = next(iter(channels.values())).pixels
                    pixels = np.repeat(np.asarray(grey, np.float32)[..., None], 3, axis=2)
                else:
                    pixels = np.asarray(channels[key].pixels, np.float32)
        except (OSError, RuntimeError, StopIteration, ValueError):
            raise UserError(f"frame {path_text(path)} cannot be read (not an EXR file)") from None
        if not np.isfinite(pixels).all():  # NaN and infinity have no colour to dream
            bad = int((~np.isfinite(pixels)).any(axis=2).sum())
            raise UserError(
                f"frame {path_text(path)} holds {bad} pixel(s) of NaN or infinity; fix them in "
                "the program that wrote it (e.g. clamp or denoise the render)"
            )
        return pixels
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise UserError(f"frame {path_text(path)} cannot be read (truncated or not a picture)")
    if data.ndim == 2:
        data = np.repeat(data[..., None], 3, axis=2)
    if data.shape[2] == 4:
        return cv2.cvtColor(data, cv2.COLOR_BGRA2RGBA)
    return cv2.cvtColor(data[..., :3], cv2.COLOR_BGR2RGB)


def _as(frame: np.ndarray, alpha: bool, deep: bool) -> np.ndarray:
    """A frame read from a file in the form a reader hands out: uint8 (or uint16 when
    ``deep``), RGB or RGBA (opaque where the file has no alpha)."""
    if frame.dtype == np.float32:  # EXR: scene-linear, sRGB-encoded for dreaming
        colour = srgb_encode(frame[..., :3])
        a = np.clip(frame[..., 3], 0, 1) if frame.shape[2] == 4 else np.ones(frame.shape[:2])
        scaled = np.dstack([colour, a]) if alpha else colour
        top = 65535 if deep else 255
        return np.round(scaled * top).astype(np.uint16 if deep else np.uint8)
    if frame.dtype == np.uint16 and not deep:
        frame = (frame.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    elif frame.dtype == np.uint8 and deep:
        frame = frame.astype(np.uint16) * 257
    if alpha and frame.shape[2] == 3:
        top = 65535 if frame.dtype == np.uint16 else 255
        frame = np.dstack([frame, np.full(frame.shape[:2], top, frame.dtype)])
    return frame if alpha else frame[..., :3]


def read_sequence(
    info: VideoInfo,
    first: int,
    last: int | None,
    size: tuple[int, int] | None,
    alpha: bool,
    deep: bool,
) -> Iterator[tuple[int, np.ndarray]]:
    """The frames of a sequence, as :func:`dreamvideo.media.frames.read_frames` gives them."""
    for index, path in enumerate(info.files[first:last], first):
        frame = _as(read_frame(path), alpha, deep and info.depth > 8)
        if size is not None and (frame.shape[1], frame.shape[0]) != tuple(size):
            shrink = size[0] < frame.shape[1]
            frame = cv2.resize(
                frame, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
            )
        yield index, frame


# --------------------------------------------------------------------------- out


def is_pattern(path: Path) -> bool:
    """Whether ``path`` is a printf pattern of frame files (``out/frame_%04d.png``)."""
    return bool(_PRINTF.search(path.name)) and path.suffix.lower() in FRAME_SUFFIXES


def frame_path(pattern: Path, number: int) -> Path:
    """The file of frame ``number``: ``out/frame_%04d.png``, 7 -> ``out/frame_0007.png``."""
    return pattern.with_name(_PRINTF.sub(lambda m: f"{number:{m.group(1)}d}", pattern.name, 1))


def beside(pattern: Path, name: str) -> Path:
    """A file that goes with a sequence: ``out/frame_%04d.png``, "settings.json" ->
    ``out/frame_settings.json``."""
    return pattern.with_name(_split_printf(pattern.name)[0] + name)


def written_frames(pattern: Path) -> list[Path]:
    """The files of ``pattern`` already on disk (anything there by those names: a frame, a
    link, a pipe), in natural order."""
    folder = pattern.parent if str(pattern.parent) else Path(".")
    if not _is_dir(folder):
        return []
    regex = pattern_regex(pattern)
    return sorted((p for p in folder.iterdir() if regex.fullmatch(p.name)), key=natural_key)


def write_frame(path: Path, frame: np.ndarray, folder: Path | None = None) -> None:
    """Write one ``(H,W,3|4)`` RGB(A) frame: uint8 or uint16 to PNG/TIFF (JPEG and WebP take
    8 bits), float32 in 0..1 (sRGB-encoded, as dreamed) to EXR as linear light. Written under
    a unique name in ``folder`` (default: beside ``path``; on the same file system) and renamed
    into place whole."""
    from dreamvideo.media.paths import replace_into, temp_path

    suffix = path.suffix.lower()
    with temp_path(path, folder=folder) as tmp:
        if suffix == ".exr":
            colour = srgb_decode(frame[..., :3].astype(np.float32)).astype(np.float32)
            pixels = np.dstack([colour, frame[..., 3]]) if frame.shape[2] == 4 else colour
            exr = _exr()
            header = {"compression": exr.ZIP_COMPRESSION, "type": exr.scanlineimage}
            with exr.File(header, {"RGBA" if frame.shape[2] == 4 else "RGB": pixels}) as f:
                f.write(str(tmp))
        else:
            code = cv2.COLOR_RGBA2BGRA if frame.shape[2] == 4 else cv2.COLOR_RGB2BGR
            params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix in (".jpg", ".jpeg") else []
            ok, data = cv2.imencode(suffix, cv2.cvtColor(frame, code), params)
            if not ok:
                raise UserError(f"cannot encode frame {path_text(path)} as {suffix}")
            tmp.write_bytes(data.tobytes())
        replace_into(tmp, path)


def check_sequence_output(
    pattern: Path, inputs: Sequence[tuple[str, str | Path | None]], overwrite: bool
) -> Path:
    """Fail before any work unless the frames of ``pattern`` can be written: a known suffix,
    a folder that exists or can be made in one that does, no frame of it already there
    without ``overwrite``, and none of its names one of the files the run reads (a frame
    folder read and written at once)."""
    from dreamvideo.media.paths import check_name, check_writable, same_file

    if pattern.suffix.lower() not in FRAME_SUFFIXES:
        raise UserError(
            f"output {path_text(pattern)}: frames are written as {', '.join(FRAME_SUFFIXES)}"
        )
    frame = frame_path(pattern, 10**9 - 1)
    check_name(frame, "output", 0, f"{path_text(pattern)} (a frame such as {excerpt(frame.name)})")
    check_name(pattern, "output", len(".parts"))
    folder = pattern.parent if str(pattern.parent) else Path(".")
    for what, source in inputs:
        if source is None:
            continue
        files = frame_files(Path(source)) if is_sequence(Path(source)) else [Path(source)]
        for f in files:
            if any(same_file(f, frame_path(pattern, n)) for n in _numbers_like(f)):
                raise UserError(
                    f"output {path_text(pattern)} would write over {path_text(f)} of the "
                    f"{'input' if what == 'input' else what}; choose another name or folder"
                )
    if not _is_dir(folder):
        if not _is_dir(folder.parent if str(folder.parent) else Path(".")):
            raise UserError(f"output folder {path_text(folder)} does not exist")
        try:
            folder.mkdir()
        except OSError as e:
            raise UserError(f"cannot make folder {path_text(folder)} ({e.strerror or e})") from None
    there = written_frames(pattern)
    if there and not overwrite:
        raise UserError(
            f"output {path_text(pattern)}: {len(there)} frame(s) already exist, such as "
            f"{path_text(there[0])}; add -y/--overwrite to replace them"
        )
    check_writable(folder)
    return pattern


def _numbers_like(path: Path) -> list[int]:
    """The number a frame file carries (``frame_0012.png`` -> [12]), if any."""
    m = _NUMBER.search(path.stem)
    return [int(m.group(1))] if m else []
