"""Shared fixtures: tiny pictures from scikit-image and the bundled network, loaded once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dreamvideo.models import Backbone, load_backbone

torch.set_num_threads(2)


def photo(name: str = "chelsea", width: int = 96) -> np.ndarray:
    """A scikit-image photo as ``(H,W,3)`` uint8, scaled to ``width``."""
    import skimage.data

    rgb = getattr(skimage.data, name)()
    height = round(rgb.shape[0] * width / rgb.shape[1])
    return np.array(Image.fromarray(rgb).resize((width, height), Image.LANCZOS))


@pytest.fixture(scope="session")
def lite0() -> Backbone:
    """The bundled EfficientNet-Lite0 with its ImageNet weights (shared, never modified)."""
    return load_backbone()


@pytest.fixture()
def cat_png(tmp_path) -> str:
    path = tmp_path / "cat.png"
    Image.fromarray(photo("chelsea", 96)).save(path)
    return str(path)
