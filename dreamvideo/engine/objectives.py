"""What the ascent maximizes: small objective functions with ``+``, ``-``, scalar ``*`` and ``sum``.

An objective maps layer activations to a ``(B,)`` quantity to MAXIMIZE. Activations may be a
crop of the whole feature map (tiled gradients); ``windows`` then says where the crop sits, so
every term is a sum over cells divided by the WHOLE map's size and tiles add up exactly to the
whole-image value.

Text syntax, shared by the CLI and YAML (see :func:`parse_objective`)::

    blocks.10                    mean squared activation of a layer (classic DeepDream)
    blocks.10:42                 mean activation of channel 42
    blocks.10:1,5,9              mean of several channels
    blocks.10:42@0.5,0.5         one neuron: channel 42 at relative position x=0.5, y=0.5
    guide(blocks.10)             match the features of the guide picture
    region(sky, blocks.4)        a term counted only inside the region "sky" (dream.regions)
    0.5*blocks.8 + blocks.10:7 - 0.2*blocks.3
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

import torch

from dreamvideo.errors import UserError
from dreamvideo.text import excerpt

Features = Mapping[str, torch.Tensor]  # layer -> (B,C,h,w) activation (possibly a crop)


@dataclass(frozen=True)
class Window:
    """A crop's top-left cell in the whole feature map and the whole map's size (cells)."""

    top: int
    left: int
    height: int
    width: int


Windows = Mapping[str, Window]
TermFn = Callable[[Features, Windows], torch.Tensor]


class ObjectiveError(UserError):
    """The objective text or its layers/channels are wrong; one line for the user."""


# Limits on objective text, checked before parsing. Real objectives mix a handful of layers
# and channels; every term adds work to every ascent step of every frame, so more than 64 is
# a mistake or an attack, and 2,000 characters hold 64 long terms.
MAX_OBJECTIVE_CHARS = 2_000
MAX_TERMS = 64


def _window(feats: Features, windows: Windows | None, layer: str) -> Window:
    if windows is not None and layer in windows:
        return windows[layer]
    h, w = feats[layer].shape[-2:]
    return Window(0, 0, h, w)


@dataclass(frozen=True)
class Objective:
    """A quantity to maximize: ``objective(feats, windows) -> (B,)`` tensor.

    ``layers`` are the activations it reads; ``name`` is a readable formula. A sum keeps its
    ``terms`` so that adding to it stays one flat sum instead of nesting closures.
    ``regions``: the region mattes it reads, as :func:`region_feature` entries of the features.
    """

    fn: TermFn
    name: str
    layers: frozenset[str]
    terms: tuple[Objective, ...] = field(default=(), repr=False, compare=False)
    regions: frozenset[str] = frozenset()

    def __call__(self, feats: Features, windows: Windows | None = None) -> torch.Tensor:
        return self.fn(feats, windows or {})

    def __add__(self, other: Objective) -> Objective:
        return Objective.sum([self, other])

    def __neg__(self) -> Objective:
        return -1.0 * self

    def __sub__(self, other: Objective) -> Objective:
        return self + (-other)

    def __mul__(self, k: float) -> Objective:
        k = float(k)
        inner = f"({self.name})" if " " in self.name else self.name
        name = {1.0: inner, -1.0: f"-{inner}"}.get(k, f"{k:g}*{inner}")
        return Objective(lambda f, w: k * self.fn(f, w), name, self.layers, regions=self.regions)

    __rmul__ = __mul__

    @staticmethod
    def sum(objectives: Iterable[Objective]) -> Objective:
        """One flat sum: a single function over all terms, so 1,000 terms never recurse."""
        objectives = list(objectives)
        if len(objectives) == 1:
            return objectives[0]
        terms = tuple(t for o in objectives for t in (o.terms or (o,)))
        if not terms:
            raise ObjectiveError("an objective needs at least one term")
        fns = tuple(t.fn for t in terms)

        def fn(feats: Features, windows: Windows) -> torch.Tensor:
            total = fns[0](feats, windows)
            for term_fn in fns[1:]:
                total = total + term_fn(feats, windows)
            return total

        name = terms[0].name
        for t in terms[1:]:
            name = f"{name} - {t.name[1:]}" if t.name.startswith("-") else f"{name} + {t.name}"
        layers = frozenset().union(*(t.layers for t in terms))
        regions = frozenset().union(*(t.regions for t in terms))
        return Objective(fn, name, layers, terms, regions)


# --------------------------------------------------------------------------- terms


def layer(name: str) -> Objective:
    """Mean squared activation of a whole layer (the classic DeepDream objective)."""

    def fn(feats: Features, windows: Windows) -> torch.Tensor:
        a, win = feats[name], _window(feats, windows, name)
        return a.float().square().sum((1, 2, 3)) / (a.shape[1] * win.height * win.width)

    return Objective(fn, name, frozenset([name]))


def channel(name: str, channels: Iterable[int]) -> Objective:
    """Mean activation of the given channels of a layer."""
    chs = list(channels)

    def fn(feats: Features, windows: Windows) -> torch.Tensor:
        a, win = feats[name], _window(feats, windows, name)
        return a[:, chs].float().sum((1, 2, 3)) / (len(chs) * win.height * win.width)

    return Objective(fn, f"{name}:{','.join(map(str, chs))}", frozenset([name]))


def neuron(name: str, ch: int, x: float = 0.5, y: float = 0.5) -> Objective:
    """Activation of one channel at one position, ``x``/``y`` relative (0..1) to the map."""

    def fn(feats: Features, windows: Windows) -> torch.Tensor:
        a, win = feats[name], _window(feats, windows, name)
        row = round(y * (win.height - 1)) - win.top
        col = round(x * (win.width - 1)) - win.left
        if 0 <= row < a.shape[2] and 0 <= col < a.shape[3]:
            return a[:, ch, row, col].float()
        return a.new_zeros(a.shape[0], dtype=torch.float32)  # the neuron is in another tile

    return Objective(fn, f"{name}:{ch}@{x:g},{y:g}", frozenset([name]))


def guide(name: str, guide_features: torch.Tensor) -> Objective:
    """Pull each position towards its best-matching guide feature vector (Google's guide).

    ``guide_features``: ``(C, N)`` activations of the guide picture at ``name``. For each
    position the dot product with the best-matching guide vector is summed; its gradient is
    that guide vector, so the dream takes on the guide's features.
    """
    g = guide_features.float()

    def fn(feats: Features, windows: Windows) -> torch.Tensor:
        a, win = feats[name].float(), _window(feats, windows, name)
        flat = a.flatten(2).transpose(1, 2)  # (B, hw, C)
        match = (flat @ g.to(flat.device)).amax(dim=2)  # (B, hw)
        return match.sum(1) / (a.shape[1] * win.height * win.width)

    return Objective(fn, f"guide({name})", frozenset([name]))


def region_feature(layer_name: str, region_name: str) -> str:
    """The features' key of region ``region_name``'s matte at ``layer_name``'s size."""
    return f"{layer_name}@{region_name}"


def region(name: str, inner: Objective) -> Objective:
    """``inner`` counted only inside region ``name``: each activation it reads is multiplied
    by the region's matte taken to that layer's size (``(B,1,h,w)`` in [0,1], supplied by the
    ascent under :func:`region_feature`), so the term grows its patterns there alone."""

    def fn(feats: Features, windows: Windows) -> torch.Tensor:
        masked = dict(feats)
        for layer_name in inner.layers:
            masked[layer_name] = feats[layer_name] * feats[region_feature(layer_name, name)]
        return inner.fn(masked, windows)

    return Objective(
        fn, f"region({name}, {inner.name})", inner.layers, regions=inner.regions | {name}
    )


# --------------------------------------------------------------------------- parser

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)"
    r"|(?P<op>[-+*:,@()]))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ObjectiveError(
                f"objective {excerpt(text)}: unexpected "
                f"{excerpt(text[pos:].strip(), 12)} at character {pos + 1}"
            )
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over the tokens; builds the objective directly (never evals text)."""

    def __init__(
        self,
        text: str,
        channels: Mapping[str, int] | None,
        guide_features: Callable[[str], torch.Tensor] | None,
        regions: Collection[str] | None = None,
    ) -> None:
        self.text, self.toks, self.i = text, _tokens(text), 0
        self.channels, self.guide_features, self.regions = channels, guide_features, regions

    def fail(self, what: str) -> ObjectiveError:
        got = self.toks[self.i][1] if self.i < len(self.toks) else "the end"
        return ObjectiveError(
            f"objective {excerpt(self.text)}: expected {what}, "
            f"got {excerpt(got)}; "
            "examples: blocks.10, blocks.10:42, 0.5*blocks.8 + blocks.10:7"
        )

    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        k, v = self.toks[self.i]
        return (value is None or v == value) and (kind is None or k == kind)

    def take(self, kind: str, what: str, value: str | None = None) -> str:
        if not self.peek(value, kind):
            raise self.fail(what)
        self.i += 1
        return self.toks[self.i - 1][1]

    def expr(self, inner: bool = False) -> Objective:
        """A sum of terms up to the end of the text (``inner``: up to a closing bracket)."""
        terms = []
        while True:
            negative = self.peek("-")
            if negative or self.peek("+") or terms:
                self.take("op", "+ or -")
            if len(terms) == MAX_TERMS:
                raise ObjectiveError(
                    f"objective {excerpt(self.text)}: more than {MAX_TERMS} "
                    f"terms; at most {MAX_TERMS} are accepted"
                )
            terms.append(-self.term() if negative else self.term())
            if not (self.peek("+") or self.peek("-")):
                break
        if inner:
            self.take("op", "+, - or )", ")")
        elif self.i != len(self.toks):
            raise self.fail("+, - or the end")
        return Objective.sum(terms)

    def term(self) -> Objective:
        weight = 1.0
        if self.peek(kind="num"):
            raw = self.take("num", "a number")
            weight = float(raw)
            if not math.isfinite(weight):  # 1e999 is inf: the loss and every gradient blow up
                raise ObjectiveError(
                    f"objective {excerpt(self.text)}: weight "
                    f"{excerpt(raw, quote=False)} is not a finite number; "
                    "use a number like 0.5"
                )
            self.take("op", "*", "*")
        return weight * self.atom() if weight != 1.0 else self.atom()

    def layer_name(self) -> str:
        name = self.take("name", "a layer name")
        if self.channels is not None and name not in self.channels:
            raise ObjectiveError(
                f"objective {excerpt(self.text)}: unknown layer "
                f"{excerpt(name)}; valid layers: "
                f"{', '.join(self.channels)}"
            )
        return name

    def channel_index(self, name: str) -> int:
        ch = self.take("num", "a channel number")
        if not ch.isdigit():
            raise self.fail("a whole channel number")
        n = self.channels[name] if self.channels is not None else None
        if n is not None and int(ch) >= n:
            raise ObjectiveError(
                f"objective {excerpt(self.text)}: channel "
                f"{excerpt(ch, quote=False)} out of range for "
                f"{name} (0..{n - 1})"
            )
        return int(ch)

    def called(self, function: str) -> bool:
        """Whether ``function(`` comes next."""
        return (
            self.peek(function, "name")
            and self.i + 1 < len(self.toks)
            and self.toks[self.i + 1][1] == "("
        )

    def region(self) -> Objective:
        self.i += 2
        name = self.take("name", "a region name")
        if self.regions is not None and name not in self.regions:
            given = ", ".join(self.regions) if self.regions else "none"
            raise ObjectiveError(
                f"objective {excerpt(self.text)} uses region({excerpt(name, quote=False)}, ...) "
                f"but no such region was given (--region {name}=SOURCE or dream.regions); "
                f"given: {given}"
            )
        self.take("op", "a comma after the region name", ",")
        return region(name, self.expr(inner=True))

    def atom(self) -> Objective:
        if self.called("region"):
            return self.region()
        if self.called("guide"):
            self.i += 2
            name = self.layer_name()
            self.take("op", ")", ")")
            if self.guide_features is None:
                raise ObjectiveError(
                    f"objective {excerpt(self.text)} uses "
                    f"guide({excerpt(name, quote=False)}) but no guide "
                    "picture was given (--guide FILE or dream.guide)"
                )
            return guide(name, self.guide_features(name))
        name = self.layer_name()
        if not self.peek(":"):
            return layer(name)
        self.i += 1
        chs = [self.channel_index(name)]
        while self.peek(","):
            self.i += 1
            chs.append(self.channel_index(name))
        if not self.peek("@"):
            return channel(name, chs)
        self.i += 1
        if len(chs) != 1:
            raise self.fail("a single channel before @")
        x = float(self.take("num", "an x position in 0..1"))
        self.take("op", ",", ",")
        y = float(self.take("num", "a y position in 0..1"))
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise ObjectiveError(
                f"objective {excerpt(self.text)}: neuron position must be in 0..1, got {x:g},{y:g}"
            )
        return neuron(name, chs[0], x, y)


def parse_objective(
    text: str,
    channels: Mapping[str, int] | None = None,
    guide_features: Callable[[str], torch.Tensor] | None = None,
    regions: Collection[str] | None = None,
) -> Objective:
    """Build an :class:`Objective` from its text form.

    ``channels`` (layer -> channel count), when given, validates layer names and channel
    indices. ``guide_features(layer) -> (C, N)`` supplies the guide picture's activations.
    ``regions``, when given, are the region names ``region(NAME, ...)`` may use.
    """
    if not text or not text.strip():
        raise ObjectiveError("objective is empty; examples: blocks.10, blocks.10:42")
    if len(text) > MAX_OBJECTIVE_CHARS:
        raise ObjectiveError(
            f"objective {excerpt(text)} is {len(text):,} characters; at most "
            f"{MAX_OBJECTIVE_CHARS:,} are accepted"
        )
    return _Parser(text, channels, guide_features, regions).expr()
