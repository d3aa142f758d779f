"""Keyframed values: ``"0: 1.05, 120: 1.3, 240: 1.05"`` -> a value for every frame.

Text form (keyframes parsed by hand; expressions compiled by :mod:`dreamvideo.motion.expressions`,
never evaluated as Python)::

    [linear: | smooth: | step:]  TIME: VALUE, TIME: VALUE, ...

``TIME`` is a frame number, or seconds with an ``s`` suffix (``2.5s``); all keys use the same
unit and increase. ``VALUE`` is a number, a math expression of ``t``, ``s``, ``fps`` and the
audio envelopes (``0: (1.02 + 0.02*sin(2*pi*t/20)), 120: 1.0``, Deforum's syntax), or, for
objective schedules, an objective text (``0: blocks.8, 10s: blocks.10``).

Between number keys the value is interpolated linearly, with ``smooth`` (ease in and out) or
held (``step``); before the first key and after the last the nearest key holds. As in
Deforum, an expression key is computed at every frame from its time until the next key, and a
number key before an expression key eases towards the expression's value at that key. A plain
number, expression (or objective) is a constant schedule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from dreamvideo.errors import UserError
from dreamvideo.motion.expressions import Expression, ExpressionError, compile_expression
from dreamvideo.text import NUMBER, excerpt

T = TypeVar("T", float, str, "float | Expression")
# Limits on what a schedule may hold, checked before any parsing so hostile text costs nothing.
# Hand-written schedules hold tens of keyframes; 2,000 still allows one per frame for over a
# minute at 24 fps, and every frame's interpolation looks over all of them. The text limit is
# the size of 2,000 short keyframes.
MAX_SCHEDULE_CHARS = 20_000
MAX_KEYFRAMES = 2_000
PROGRESS_FRAMES = 50_000  # frames between progress reports of a check over every frame

# dreamvideo.names.INTERPOLATIONS -> easing of the share a (0..1) between two keyframes
EASINGS = {"linear": lambda a: a, "smooth": lambda a: a * a * (3 - 2 * a), "step": lambda a: 0.0}
_MODE = re.compile(rf"\s*({'|'.join(EASINGS)})\s*:\s*(?=\d|\.\d)")
# a keyframe starts where a TIME ':' follows the start or a comma
_KEY_START = re.compile(rf"(?:^|,)\s*({NUMBER})(s?)\s*:")


class ScheduleError(UserError):
    """A schedule's text is malformed; the message shows the expected form."""


def is_schedule(text: str) -> bool:
    """Whether ``text`` is keyframed (starts with ``TIME:`` or an interpolation name)."""
    return bool(_MODE.match(text) or re.match(rf"\s*{NUMBER}s?\s*:", text))


@dataclass(frozen=True)
class Schedule(Generic[T]):
    """Keyframes ``(time, value)`` with times in frames, or in seconds if ``seconds``."""

    keys: tuple[tuple[float, T], ...]
    seconds: bool = False
    mode: str = "linear"
    key: str = ""  # the config key, named in errors

    def _frames(self, fps: float) -> list[float]:
        return [t * fps if self.seconds else t for t, _ in self.keys]

    def weights(self, frame: float, fps: float) -> list[tuple[T, float]]:
        """The one or two keyframe values in effect at ``frame`` and their weights (sum 1)."""
        times = self._frames(fps)
        if frame <= times[0] or len(times) == 1:
            return [(self.keys[0][1], 1.0)]
        if frame >= times[-1]:
            return [(self.keys[-1][1], 1.0)]
        i = max(k for k, t in enumerate(times) if t <= frame)
        a = EASINGS[self.mode]((frame - times[i]) / (times[i + 1] - times[i]))
        pairs = [(self.keys[i][1], 1.0 - a), (self.keys[i + 1][1], a)]
        return [(v, w) for v, w in pairs if w > 0]

    def value(self, frame: float, fps: float, audio: Mapping[str, float] | None = None) -> float:
        """The number at ``frame`` (number schedules only); ``audio``: the envelopes' values at
        this frame, for expressions (missing ones are 0).

        :class:`ScheduleError` if an expression cannot be computed here."""
        times = self._frames(fps)
        i = max([k for k, t in enumerate(times) if t <= frame], default=0)
        if isinstance(self.keys[i][1], Expression) or frame <= times[0] or i == len(times) - 1:
            return self._at(i, frame, fps, audio)
        a = EASINGS[self.mode]((frame - times[i]) / (times[i + 1] - times[i]))
        start = self._at(i, frame, fps, audio)
        return start if a == 0 else (1 - a) * start + a * self._at(i + 1, times[i + 1], fps, audio)

    def _at(self, i: int, frame: float, fps: float, audio: Mapping[str, float] | None) -> float:
        v = self.keys[i][1]
        if not isinstance(v, Expression):
            return float(v)
        try:
            return v({**(audio or {}), "t": frame, "s": frame / fps, "fps": fps})
        except ExpressionError as e:
            raise ScheduleError(
                f"{self.key}: {e} at frame {frame:g} in {excerpt(v.text)}"
            ) from None

    def values(self) -> list[T]:
        return [v for _, v in self.keys]

    def uses(self) -> frozenset[str]:
        """The variables its expressions read (``t``, ``beat``, ...)."""
        return frozenset().union(*(v.uses for _, v in self.keys if isinstance(v, Expression)))

    def check_frames(
        self,
        frames: range,
        fps: float,
        audio: Callable[[int], Mapping[str, float] | None],
        check: Callable[[str, float], None],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Compute every frame's value up front and ``check(key, value)`` it, so an expression
        that fails or leaves its range at frame 200 is one error before any work; the error
        names the frame. ``progress(t)`` hears every ``PROGRESS_FRAMES`` frames (a check over
        millions of frames takes a while: about 8 us a frame)."""
        if not any(isinstance(v, Expression) for _, v in self.keys):
            return  # plain numbers were checked with the config
        for i, t in enumerate(frames):
            if progress is not None and i % PROGRESS_FRAMES == 0:
                progress(t)
            try:
                check(self.key, self.value(t, fps, audio(t)))
            except ScheduleError:
                raise
            except UserError as e:
                raise type(e)(f"{e} at frame {t}") from None

    def numbers(self) -> list[float]:
        """The keys that are plain numbers (expressions are checked frame by frame)."""
        return [float(v) for _, v in self.keys if not isinstance(v, Expression)]


def _fail(text: str, key: str, why: str) -> ScheduleError:
    return ScheduleError(
        f"{key}: {why} in schedule {excerpt(text)}; expected 'FRAME: VALUE, "
        "...' such as '0: 1.05, 120: 1.3' or '0s: 1.05, 5s: 1.3'"
    )


def _too_big(key: str, what: str) -> ScheduleError:
    return ScheduleError(
        f"{key}: schedule has {what}; at most {MAX_SCHEDULE_CHARS:,} characters "
        f"and {MAX_KEYFRAMES:,} keyframes are accepted"
    )


def _number(raw: str, key: str, text: str, offset: int) -> float | Expression:
    """A keyframe's value: a number, or an expression found ``offset`` characters into the
    schedule's ``text`` (so its errors point into what the user wrote)."""
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return compile_expression(raw, offset)
    except ExpressionError as e:
        raise ScheduleError(f"{key}: {e}; in {excerpt(text)}") from None


def _top_level(body: str, starts: list[re.Match[str]]) -> list[re.Match[str]]:
    """The keyframe starts outside parentheses (an expression's commas are not keys)."""
    depth, pos, kept = 0, 0, []
    for m in starts:
        depth += body.count("(", pos, m.start()) - body.count(")", pos, m.start())
        pos = m.start()
        if depth <= 0:
            kept.append(m)
    return kept


def parse_schedule(
    value: float | int | str, key: str, numbers: bool = True, default_mode: str = "linear"
) -> Schedule:
    """Parse a constant or keyframed ``value`` for config key ``key`` (named in errors).

    ``numbers=False`` keeps keyframe values as text (objective schedules).
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Schedule(((0.0, float(value)),), key=key)
    text = str(value)
    if len(text) > MAX_SCHEDULE_CHARS:
        raise _too_big(key, f"{len(text):,} characters")
    if not is_schedule(text):
        constant: Any = _number(text, key, text, 0) if numbers else text.strip()
        return Schedule(((0.0, constant),), key=key)
    mode, body = default_mode, text
    m = _MODE.match(text)
    if m:
        mode, body = m.group(1), text[m.end() :]
    skipped = len(text) - len(body)
    starts = _top_level(body, list(_KEY_START.finditer(body)))
    if len(starts) > MAX_KEYFRAMES:
        raise _too_big(key, f"{len(starts):,} keyframes")
    if not starts or starts[0].start() != 0 or body[: starts[0].start()].strip():
        raise _fail(text, key, "it does not start with a keyframe")
    keys: list[tuple[float, Any]] = []
    units = set()
    for m, nxt in zip(starts, [*starts[1:], None], strict=True):
        raw = body[m.end() : nxt.start() if nxt else len(body)]
        if not raw.strip():
            raise _fail(text, key, f"keyframe {excerpt(m.group(1), quote=False)} has no value")
        val = _number(raw, key, text, skipped + m.end()) if numbers else raw.strip()
        time = float(m.group(1))
        if not math.isfinite(time):  # 400 digits make inf, which no frame ever reaches
            raise _fail(
                text,
                key,
                f"keyframe time {excerpt(m.group(1), quote=False)} is not a finite number",
            )
        if time != 0:  # "0" needs no unit: "0: 1.05, 5s: 1.3"
            units.add(m.group(2))
        keys.append((time, val))
    if len(units) > 1:
        raise _fail(text, key, "frames and seconds are mixed")
    times = [t for t, _ in keys]
    if any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise _fail(text, key, "keyframe times do not increase")
    return Schedule(tuple(keys), seconds=units == {"s"}, mode=mode, key=key)
