"""Backbones as ordered, named stages: the bundled EfficientNet-Lite0 and torchvision networks.

A :class:`Backbone` runs its stages in order and returns the activations of the requested
layers, stopping after the deepest one; :meth:`Backbone.truncated` drops the unused tail so
neither memory nor time is spent on it. Parameters are frozen and the network is in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from dreamvideo.engine.efficientnet import EfficientNetLite0, bundled_weights_path
from dreamvideo.engine.weights import ModelError, load_state, torchvision_state
from dreamvideo.names import DEFAULT_MODEL, MODELS


@dataclass(frozen=True)
class LayerInfo:
    """One dreamable layer: its name, channel count and stride in input pixels."""

    name: str
    channels: int
    stride: int


class Backbone(nn.Module):
    """Named stages of a classifier, run in order on ``(B,3,H,W)`` float images in ``[0,1]``.

    ``mean``/``std`` map ``[0,1]`` pixels to what the network was trained on.
    """

    def __init__(
        self,
        name: str,
        stages: list[tuple[str, nn.Module]],
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
    ) -> None:
        super().__init__()
        self.name = name
        self.names = [n for n, _ in stages]
        self.stages = nn.ModuleList([m for _, m in stages])
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.channels_last = False  # feed NHWC tensors (set by use_channels_last)
        self._strides: dict[str, int] | None = None
        self.eval().requires_grad_(False)

    def fuse_batchnorm(self) -> Backbone:
        """Fold each eval-mode BatchNorm into the convolution before it (same outputs, faster).

        A BatchNorm registered right after a Conv2d in the same parent is the one applied to
        its output in every supported architecture; tests check outputs are unchanged.
        """
        for parent in self.modules():
            names = list(parent._modules)
            for a, b in zip(names, names[1:], strict=False):
                conv, bn = parent._modules[a], parent._modules[b]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    parent._modules[a] = fuse_conv_bn_eval(conv, bn)
                    parent._modules[b] = nn.Identity()
        return self.requires_grad_(False)

    def use_channels_last(self) -> Backbone:
        """Store weights and feed inputs as NHWC, which convolutions run faster on."""
        self.to(memory_format=torch.channels_last)
        self.channels_last = True
        return self

    def strides(self) -> dict[str, int]:
        """Layer name -> stride in input pixels (probed once, then cached)."""
        if self._strides is None:
            self._strides = {info.name: info.stride for info in self.layer_table()}
        return self._strides

    def check_layers(self, layers: Iterable[str]) -> None:
        """Raise :class:`ModelError` naming the valid layers if any name is unknown."""
        unknown = sorted(set(layers) - set(self.names))
        if unknown:
            raise ModelError(
                f"unknown layer {', '.join(map(repr, unknown))} for model "
                f"{self.name}; valid layers: {', '.join(self.names)}"
            )

    def truncated(self, layers: Iterable[str]) -> Backbone:
        """The same network cut after the deepest of ``layers`` (shares the weights)."""
        layers = list(layers)
        self.check_layers(layers)
        depth = max(self.names.index(n) for n in layers) + 1
        stages = list(zip(self.names[:depth], self.stages[:depth], strict=True))
        out = Backbone(self.name, stages, (0, 0, 0), (1, 1, 1))
        out.mean, out.std, out.channels_last = self.mean, self.std, self.channels_last
        # the cut's strides are the network's: no probe of its own (a new shape on a GPU)
        out._strides = {n: s for n, s in self.strides().items() if n in out.names}
        return out

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """``x``: ``(B,3,H,W)`` in ``[0,1]`` -> ``{layer: (B,C,h,w) activation}``."""
        wanted = set(layers)
        out: dict[str, torch.Tensor] = {}
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for name, stage in zip(self.names, self.stages, strict=True):
            x = stage(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out

    def layer_table(self, size: int = 224) -> list[LayerInfo]:
        """Channels and stride of every layer, probed with one ``size`` x ``size`` forward."""
        p = next(self.parameters())
        with torch.no_grad():
            feats = self(torch.zeros(1, 3, size, size, device=p.device, dtype=p.dtype), self.names)
        # Valid (unpadded) convolutions shrink maps a little: round the ratio to a power of 2.
        return [
            LayerInfo(n, f.shape[1], 2 ** max(0, round(math.log2(size / f.shape[-1]))))
            for n, f in feats.items()
        ]


# --------------------------------------------------------------------------- architectures

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# googlenet and inception_v3 weights expect (x - 0.5) / 0.5 (torchvision's transform_input).
HALF = (0.5, 0.5, 0.5)


def _efficientnet_stages(net: EfficientNetLite0) -> list[tuple[str, nn.Module]]:
    stages: list[tuple[str, nn.Module]] = [
        ("stem", nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6()))
    ]
    stages += [(f"blocks.{i}", b) for i, b in enumerate(net._blocks)]
    stages.append(("head", nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())))
    return stages


def _children(net: nn.Module, skip: tuple[str, ...]) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in net.named_children() if n not in skip]


def _vgg_stages(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """VGG ``features`` named like the papers: ``relu3_2`` is the 2nd ReLU of block 3."""
    stages, block, conv, pending = [], 1, 0, []
    for m in net.features:
        pending.append(m)
        if isinstance(m, nn.Conv2d):
            conv += 1
            continue
        if isinstance(m, nn.ReLU):
            m.inplace = False  # an in-place ReLU would overwrite activations we return
            name = f"relu{block}_{conv}"
        else:
            name, block, conv = f"pool{block}", block + 1, 0
        stages.append((name, nn.Sequential(*pending)))
        pending = []
    return stages


def _resnet_stages(net: nn.Module) -> list[tuple[str, nn.Module]]:
    stages = [("stem", nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool))]
    for layer in ("layer1", "layer2", "layer3", "layer4"):
        stages += [(f"{layer}.{i}", b) for i, b in enumerate(getattr(net, layer))]
    return stages


@dataclass(frozen=True)
class _Spec:
    build: Callable[[], nn.Module]
    stages: Callable[[nn.Module], list[tuple[str, nn.Module]]]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _tv(name: str, **kwargs: object) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models as tvm

        return getattr(tvm, name)(weights=None, **kwargs)

    return build


_SPECS: dict[str, _Spec] = {
    DEFAULT_MODEL: _Spec(
        EfficientNetLite0, _efficientnet_stages, (127 / 255,) * 3, (128 / 255,) * 3
    ),
    "googlenet": _Spec(
        _tv("googlenet", aux_logits=False, init_weights=False),
        lambda n: _children(n, ("avgpool", "dropout", "fc")),
        HALF,
        HALF,
    ),
    "inception_v3": _Spec(
        _tv("inception_v3", aux_logits=False, init_weights=False),
        lambda n: _children(n, ("AuxLogits", "avgpool", "dropout", "fc")),
        HALF,
        HALF,
    ),
    "vgg16": _Spec(_tv("vgg16"), _vgg_stages, IMAGENET_MEAN, IMAGENET_STD),
    "vgg19": _Spec(_tv("vgg19"), _vgg_stages, IMAGENET_MEAN, IMAGENET_STD),
    "resnet50": _Spec(_tv("resnet50"), _resnet_stages, IMAGENET_MEAN, IMAGENET_STD),
}


def load_backbone(
    name: str = DEFAULT_MODEL,
    weights: str | Path | None = None,
    device: torch.device | str = "cpu",
    pretrained: bool = True,
    fold_batchnorm: bool = True,
) -> Backbone:
    """Build ``name`` with its ImageNet weights (strictly loaded), frozen, in eval mode.

    ``weights`` overrides where the state dict comes from (``torch.load(weights_only=True)``).
    ``pretrained=False`` gives random weights, enough to list layers without any file;
    ``fold_batchnorm=False`` keeps the BatchNorm layers (to measure what folding gains).
    """
    if name not in _SPECS:
        raise ModelError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    spec = _SPECS[name]
    net = spec.build()
    if pretrained:
        if weights is not None:
            state = load_state(weights)
        elif name == DEFAULT_MODEL:
            state = load_state(bundled_weights_path())
        else:
            state = torchvision_state(name)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
            raise ModelError(
                f"weights {weights or name} do not fit model {name}: {first[:160]}"
            ) from None
    backbone = Backbone(name, spec.stages(net), spec.mean, spec.std)
    if fold_batchnorm:
        backbone.fuse_batchnorm()
    return backbone.to(device)


def load_raft(
    weights: str | Path | None = None,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """torchvision's RAFT-small optical flow network with its weights, frozen, in eval mode."""
    import torchvision.models.optical_flow as of

    net = of.raft_small(weights=None)
    state = load_state(weights) if weights else torchvision_state("raft_small", "--flow-weights")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError:
        raise ModelError(f"weights {weights or 'raft_small'} do not fit RAFT-small") from None
    return net.eval().requires_grad_(False).to(device)
