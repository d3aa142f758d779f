"""Colour that holds (pure tensor code): match a dreamed frame's colour statistics to a
reference, in CIE LAB (D65), where lightness and the two colour axes are nearly independent.

Repeated dreaming pushes colours towards the network's favourite vivid greens and reds; over
hundreds of zoom frames the whole picture drifts. Matching each frame's per-channel mean and
spread (Reinhard's transfer) to a reference keeps the palette while the detail stays dreamed.
Images are ``(1,3,H,W)`` float in ``[0,1]``, on any device.
"""

from __future__ import annotations

import torch

# dreamvideo.names.COLOR_MATCHES -> what each frame is matched to
COLOR_MATCHES = {
    "none": "nothing (colours drift freely)",
    "source": "the picture the frame was dreamed from",
    "first": "the first dreamed frame",
}

# the spread may change at most this factor per frame: a flat reference (a colour start)
# must not blow a frame's noise up into stripes
MAX_GAIN = 2.0

_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])


def _linear(rgb: torch.Tensor) -> torch.Tensor:
    return torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)


def _gamma(lin: torch.Tensor) -> torch.Tensor:
    lin = lin.clamp_min(0)
    return torch.where(lin > 0.0031308, 1.055 * lin ** (1 / 2.4) - 0.055, 12.92 * lin)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """``(1,3,H,W)`` sRGB in [0,1] -> LAB (L 0..100, a and b about -128..127)."""
    m, white = _RGB_TO_XYZ.to(rgb), _WHITE.to(rgb)
    xyz = torch.einsum("ij,bjhw->bihw", m, _linear(rgb.clamp(0, 1))) / white[None, :, None, None]
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], dim=1
    )


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_lab`, clipped to [0,1]."""
    fy = (lab[:, 0] + 16) / 116
    f = torch.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], dim=1)
    xyz = torch.where(f > 0.206893, f**3, (f - 16 / 116) / 7.787)
    xyz = xyz * _WHITE.to(lab)[None, :, None, None]
    rgb = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB_TO_XYZ).to(lab), xyz)
    return _gamma(rgb).clamp(0, 1)


def color_stats(rgb: torch.Tensor) -> torch.Tensor:
    """Mean and standard deviation of each LAB channel: ``(2,3)`` float32."""
    lab = rgb_to_lab(rgb.float())[0].flatten(1)
    return torch.stack([lab.mean(1), lab.std(1)])


def match_color(rgb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``rgb`` with each LAB channel's mean and spread moved to ``target`` (from
    :func:`color_stats`); the spread changes by at most ``MAX_GAIN`` either way."""
    lab = rgb_to_lab(rgb.float())
    flat = lab[0].flatten(1)
    mean, std = flat.mean(1), flat.std(1)
    target = target.to(lab)
    gain = (target[1] / std.clamp_min(1e-6)).clamp(1 / MAX_GAIN, MAX_GAIN)
    out = (lab - mean[None, :, None, None]) * gain[None, :, None, None]
    return lab_to_rgb(out + target[0][None, :, None, None]).to(rgb.dtype)
