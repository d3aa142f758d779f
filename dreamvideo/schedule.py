"""Keyframed values: ``"0: 1.05, 120: 1.3, 240: 1.05"`` -> a value for every frame.

Text form (parsed by hand, never evaluated)::

    [linear: | smooth: | step:]  TIME: VALUE, TIME: VALUE, ...

``TIME`` is a frame number, or seconds with an ``s`` suffix (``2.5s``); all keys use the same
unit and increase. ``VALUE`` is a number, or, for objective schedules, an objective text
(``0: blocks.8, 10s: blocks.10``). Between keys the value is interpolated linearly, with
``smooth`` (ease in and out) or held (``step``); before the first key and after the last the
nearest key holds. A plain number (or objective) is a constant schedule.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Generic, TypeVar

from dreamvideo.errors import UserError
from dreamvideo.text import excerpt

T = TypeVar("T", float, str)
# Limits on what a schedule may hold, checked before any parsing so hostile text costs nothing.
# Hand-written schedules hold tens of keyframes; 2,000 still allows one per frame for over a
# minute at 24 fps, and every frame's interpolation looks over all of them. The text limit is
# the size of 2,000 short keyframes.
MAX_SCHEDULE_CHARS = 20_000
MAX_KEYFRAMES = 2_000

# dreamvideo.names.INTERPOLATIONS -> easing of the share a (0..1) between two keyframes
EASINGS = {"linear": lambda a: a, "smooth": lambda a: a * a * (3 - 2 * a), "step": lambda a: 0.0}
_MODE = re.compile(rf"\s*({'|'.join(EASINGS)})\s*:\s*(?=\d|\.\d)")
# a keyframe starts where a TIME ':' follows the start or a comma
_KEY_START = re.compile(r"(?:^|,)\s*(\d+(?:\.\d+)?|\.\d+)(s?)\s*:")


class ScheduleError(UserError):
    """A schedule's text is malformed; the message shows the expected form."""


def is_schedule(text: str) -> bool:
    """Whether ``text`` is keyframed (starts with ``TIME:`` or an interpolation name)."""
    return bool(_MODE.match(text) or re.match(r"\s*(\d+(\.\d+)?|\.\d+)s?\s*:", text))


@dataclass(frozen=True)
class Schedule(Generic[T]):
    """Keyframes ``(time, value)`` with times in frames, or in seconds if ``seconds``."""

    keys: tuple[tuple[float, T], ...]
    seconds: bool = False
    mode: str = "linear"

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

    def value(self, frame: float, fps: float) -> float:
        """The interpolated number at ``frame`` (number schedules only)."""
        return float(sum(float(v) * w for v, w in self.weights(frame, fps)))

    def values(self) -> list[T]:
        return [v for _, v in self.keys]


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


def parse_schedule(
    value: float | int | str, key: str, numbers: bool = True, default_mode: str = "linear"
) -> Schedule:
    """Parse a constant or keyframed ``value`` for config key ``key`` (named in errors).

    ``numbers=False`` keeps keyframe values as text (objective schedules).
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Schedule(((0.0, float(value)),))
    text = str(value)
    if len(text) > MAX_SCHEDULE_CHARS:
        raise _too_big(key, f"{len(text):,} characters")
    if not is_schedule(text):
        if not numbers:
            return Schedule(((0.0, text.strip()),))
        try:
            return Schedule(((0.0, float(text)),))
        except ValueError:
            raise _fail(text, key, f"{excerpt(text.strip(), 20)} is not a number") from None
    mode, body = default_mode, text
    m = _MODE.match(text)
    if m:
        mode, body = m.group(1), text[m.end() :]
    starts = list(_KEY_START.finditer(body))
    if len(starts) > MAX_KEYFRAMES:
        raise _too_big(key, f"{len(starts):,} keyframes")
    if not starts or starts[0].start() != 0 or body[: starts[0].start()].strip():
        raise _fail(text, key, "it does not start with a keyframe")
    keys: list[tuple[float, str | float]] = []
    units = set()
    for m, nxt in zip(starts, [*starts[1:], None], strict=True):
        raw = body[m.end() : nxt.start() if nxt else len(body)].strip()
        if not raw:
            raise _fail(text, key, f"keyframe {excerpt(m.group(1), quote=False)} has no value")
        if numbers:
            try:
                val: str | float = float(raw)
            except ValueError:
                raise _fail(text, key, f"{excerpt(raw, 20)} is not a number") from None
        else:
            val = raw
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
    return Schedule(tuple(keys), seconds=units == {"s"}, mode=mode)
