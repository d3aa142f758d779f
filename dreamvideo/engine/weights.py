"""Where a network's weights come from: the bundled EfficientNet-Lite0 file, torchvision's
hub cache, or a file the user names; always ``torch.load(..., weights_only=True)``. Nothing is
downloaded at run time: a missing file is one line saying which file and where it belongs."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from dreamvideo.errors import UserError


class ModelError(UserError):
    """A model or its weights cannot be used; the message is one line meant for the user."""


def default_weights(name: str):  # -> torchvision.models.WeightsEnum member
    import torchvision.models as tvm

    return tvm.get_model_weights(name).DEFAULT


def hub_weights_file(name: str) -> Path:
    """Where torchvision's weights API caches ``name``'s default ImageNet weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(default_weights(name).url)


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict read safely from ``path``; a bad or missing file is one line."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"weights file {path} does not exist") from None
    except Exception as e:  # torch raises many types for a bad file; the user needs one line
        raise ModelError(
            f"weights file {path} is not a PyTorch state dict "
            f"({type(e).__name__}: {str(e).splitlines()[0][:120]})"
        ) from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    return state


def torchvision_state(name: str, option: str = "--weights") -> dict[str, torch.Tensor]:
    """torchvision's weights for ``name`` from the torch hub cache. Nothing is downloaded at
    run time (renders must not depend on the network); the error says what to fetch."""
    cached = hub_weights_file(name)
    if cached.is_file():
        return load_state(cached)
    raise ModelError(
        f"model {name} needs its weights file {cached.name}, which is not in "
        f"{cached.parent}; download {default_weights(name).url} into "
        f"that folder, or pass {option} FILE"
    )
