"""Reading inputs: pictures (Pillow) and, for clips, frames streamed with OpenCV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dreamvideo.errors import UserError


def read_image(path: str | Path) -> np.ndarray:
    """A picture as ``(H,W,3)`` uint8 RGB, turned upright by its EXIF orientation."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input file {path} does not exist")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB")).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{path} is not a readable image ({type(e).__name__}); "
                        "use PNG, JPEG, WebP, BMP or TIFF") from None
