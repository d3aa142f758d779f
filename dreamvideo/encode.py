"""Writing outputs: pictures with their run settings embedded, always moved into place whole."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from dreamvideo.errors import UserError

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                 ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
METADATA_KEY = "dreamvideo"


def check_image_output(path: str | Path) -> Path:
    """Fail before any work if ``path`` has no picture extension or its folder is missing."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_FORMATS:
        raise UserError(f"output {path}: unknown picture type {path.suffix or '(none)'!r}; "
                        f"use one of {', '.join(IMAGE_FORMATS)}")
    if not path.parent.is_dir():
        raise UserError(f"output folder {path.parent} does not exist")
    return path


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
