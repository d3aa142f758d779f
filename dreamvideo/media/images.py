"""Pictures in and out: every Pillow mode read correctly, settings embedded in PNGs, files
moved into place whole."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from dreamvideo.errors import UserError
from dreamvideo.media.paths import Inputs, check_output, replace_into, temp_path
from dreamvideo.names import IMAGE_FORMATS

METADATA_KEY = "dreamvideo"
# Pillow's own decompression-bomb limit (about 89 megapixels): larger files are refused
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


PREVIEW_KEY = "preview"  # marks a PNG as a render's preview, which later renders may replace


def check_image_output(
    path: str | Path,
    inputs: Inputs = (),
    overwrite: bool = False,
    what: str = "output",
) -> Path:
    return check_output(path, list(IMAGE_FORMATS), "picture", inputs, overwrite, what)


def check_preview(path: str | Path, inputs: Inputs, overwrite: bool = False) -> Path:
    """A ``--preview`` PNG: never a file the run reads or writes (``inputs``, the output
    among them); an existing file is replaced only with ``overwrite`` or when it is itself
    an earlier preview."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UserError(f"preview {path}: must be a .png file")
    earlier = path.is_file() and _is_preview(path)
    return check_output(path, [".png"], "picture", inputs, overwrite or earlier, "preview")


def _is_preview(path: Path) -> bool:
    return bool((read_image_metadata(path) or {}).get(PREVIEW_KEY))


def _to_rgb8(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> ``(H,W,3)`` uint8 RGB, high bit depths scaled rather than clipped.

    ``convert("RGB")`` clips 16-bit greyscale (modes ``I;16*`` and ``I``) to 255, turning
    ordinary 16-bit PNGs white; those are scaled by 255/65535 here instead.
    """
    if im.mode.startswith("I;16") or im.mode == "I":
        a = np.asarray(im, dtype=np.float64)
        grey = np.clip(a / 65535.0 * 255.0, 0, 255)
    elif im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        finite = a[np.isfinite(a)]
        top = 1.0 if finite.size and finite.max() <= 1.0 else 255.0  # 0..1 or 0..255 data
        grey = np.clip(np.nan_to_num(a) / top * 255.0, 0, 255)
    else:
        return np.asarray(im.convert("RGB")).copy()
    return np.repeat(np.round(grey).astype(np.uint8)[..., None], 3, axis=2)


def read_image(path: str | Path) -> np.ndarray:
    """A picture as ``(H,W,3)`` uint8 RGB, turned upright by its EXIF orientation."""
    return _read(path, _to_rgb8)


def read_alpha(path: str | Path) -> np.ndarray | None:
    """A picture's alpha channel as ``(H,W)`` float32 in [0,1] (upright), ``None`` without one."""

    def alpha(im: Image.Image) -> np.ndarray | None:
        if "A" not in im.getbands() and "transparency" not in im.info:
            return None
        return np.asarray(im.convert("RGBA"))[..., 3].astype(np.float32) / 255.0

    return _read(path, alpha)


def _read(path: str | Path, convert: Any) -> Any:
    """``convert(upright Pillow image)`` for the picture at ``path``; unreadable files, too
    large ones and missing ones are one line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input file {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return convert(ImageOps.exif_transpose(im))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(
            f"{path} is too large a picture (over {MAX_PIXELS / 1e6:.0f} "
            "megapixels); scale it down first"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UserError(
            f"{path} is not a readable image ({type(e).__name__}); use PNG, JPEG, WebP, BMP or TIFF"
        ) from None


def write_image(path: str | Path, rgb: np.ndarray, metadata: dict[str, Any] | None = None) -> None:
    """Write ``(H,W,3)`` uint8 RGB; PNGs carry ``metadata`` as JSON in a text chunk.

    The file is written under a unique name beside its destination and renamed, so a crash
    never leaves half a picture behind and no planted link is followed.
    """
    path = Path(path)
    fmt = IMAGE_FORMATS[path.suffix.lower()]
    options: dict[str, Any] = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "PNG" and metadata is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text(METADATA_KEY, json.dumps(metadata, sort_keys=True))
        options["pnginfo"] = info
    try:
        with temp_path(path) as tmp:
            Image.fromarray(rgb).save(tmp, format=fmt, **options)
            replace_into(tmp, path)
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror or e})") from None


def read_image_metadata(path: str | Path) -> dict[str, Any] | None:
    """The run settings stored in a PNG by :func:`write_image`: ``None`` when the picture has
    none, holds something else there, or cannot be read at all."""
    try:
        with Image.open(path) as im:
            text = im.info.get(METADATA_KEY)
        settings = json.loads(text) if isinstance(text, str) else None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, RecursionError):
        return None
    return settings if isinstance(settings, dict) else None


def resize_rgb(rgb: np.ndarray, width: int | None) -> np.ndarray:
    """Scale ``(H,W,3)`` uint8 to ``width`` pixels wide (aspect kept); ``None`` keeps it."""
    if not width or width == rgb.shape[1]:
        return rgb
    import torch

    from dreamvideo.engine.ascent import resize

    height = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
    t = resize(torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), (height, width))
    return t[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def enlarge(rgb: np.ndarray, factor: float, what: str = "the picture") -> np.ndarray:
    """``(H,W,3)`` uint8 scaled up ``factor`` times (Lanczos), for a dream to add detail to;
    a result over :data:`MAX_PIXELS` is one line naming ``what``."""
    if factor == 1.0:
        return rgb
    import cv2

    w, h = round(rgb.shape[1] * factor), round(rgb.shape[0] * factor)
    if w * h > MAX_PIXELS:
        raise UserError(
            f"dream.upscale {factor:g}: {what} would be {w}x{h}, over {MAX_PIXELS / 1e6:.0f} "
            "megapixels; choose a smaller upscale or width"
        )
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LANCZOS4)


def contact_sheet(tiles: list[tuple[str, np.ndarray]], columns: int = 0) -> np.ndarray:
    """Lay ``(label, (H,W,3) uint8)`` pictures on a grid with each label under its picture.

    ``columns`` = 0 picks a near-square grid; more columns than pictures are not drawn.
    Returns ``(H,W,3)`` uint8.
    """
    from PIL import ImageDraw, ImageFont

    if not tiles:
        raise ValueError("a contact sheet needs at least one picture")
    columns = min(columns or int(np.ceil(np.sqrt(len(tiles)))), len(tiles))
    rows = int(np.ceil(len(tiles) / columns))
    h, w = tiles[0][1].shape[:2]
    font_size = max(12, w // 16)
    font = ImageFont.load_default(size=font_size)
    label_h, pad = font_size + 10, 6
    sheet = Image.new(
        "RGB", (columns * (w + pad) + pad, rows * (h + label_h + pad) + pad), (24, 24, 24)
    )
    draw = ImageDraw.Draw(sheet)
    for i, (label, rgb) in enumerate(tiles):
        x = pad + (i % columns) * (w + pad)
        y = pad + (i // columns) * (h + label_h + pad)
        sheet.paste(Image.fromarray(rgb), (x, y))
        draw.text((x + 4, y + h + 4), label, fill=(235, 235, 235), font=font)
    return np.asarray(sheet)
