"""How a config setting is declared and checked: :func:`setting` keeps a field's rules (range,
choices, pattern, keyframes) in its metadata, and :class:`Section` checks every field of a
frozen dataclass against them when it is made. Errors are :class:`ConfigError`, one line
naming the key and what would be accepted."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import field
from typing import Any

from dreamvideo.errors import UserError
from dreamvideo.text import excerpt


class ConfigError(UserError):
    """A config value is wrong; the message names the key and the accepted values."""


def setting(
    default: Any,
    *,
    min: float | None = None,
    max: float | None = None,  # noqa: A002
    choices: tuple[str, ...] | None = None,
    pattern: tuple[str, str] | None = None,
    above: float | None = None,
    schedule: bool = False,
    words: str | None = None,
) -> Any:
    """A dataclass field with validation rules kept in its metadata.

    ``pattern`` is ``(regex, what it accepts in words)``; ``schedule`` lets a string hold
    keyframes (``"0: 1.05, 120: 1.3"``) whose every value must obey the numeric rules;
    ``words`` names the accepted range in errors when the bare bound would be unreadable.
    """
    rules = {
        "min": min,
        "max": max,
        "choices": choices,
        "pattern": pattern,
        "above": above,
        "schedule": schedule or None,
        "words": words,
    }
    return field(default=default, metadata={k: v for k, v in rules.items() if v is not None})


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    return {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true/false",
        type(None): "null",
    }.get(tp, getattr(tp, "__name__", str(tp)))


def _type_ok(value: Any, tp: Any) -> bool:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if isinstance(value, bool):  # bool is an int subclass: only a bool field takes true/false
        return tp is bool
    if tp is float:
        return isinstance(value, int | float)
    return isinstance(value, tp)


def parse_schedule_value(value: str, key: str, numbers: bool = True) -> Any:
    from dreamvideo.motion.schedule import ScheduleError, parse_schedule

    try:
        return parse_schedule(value, key, numbers)
    except ScheduleError as e:
        raise ConfigError(str(e)) from None


def check_number(key: str, value: float, rules: Any) -> None:
    """Range rules, then finiteness: NaN fails no comparison and inf passes one-sided bounds."""

    def fail(bound: str) -> ConfigError:
        return ConfigError(f"{key}: must be {rules.get('words') or bound}, got {excerpt(value)}")

    if "min" in rules and value < rules["min"]:
        raise fail(f">= {rules['min']}")
    if "max" in rules and value > rules["max"]:
        raise fail(f"<= {rules['max']}")
    if "above" in rules and value <= rules["above"]:
        raise fail(f"> {rules['above']}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int of over 308 digits: no float (nor tensor) can hold it
        finite = False
    if not finite:
        raise ConfigError(f"{key}: must be a finite number, got {excerpt(value)}")


class Section:
    """Validation and dict conversion shared by every config section."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value, tp, rules = getattr(self, f.name), hints[f.name], f.metadata
            key = f"{self.SECTION}.{f.name}"  # type: ignore[attr-defined]
            if not _type_ok(value, tp):
                raise ConfigError(f"{key}: expected {_describe(tp)}, got {excerpt(value)}")
            if isinstance(value, str) and "schedule" in rules:
                for v in parse_schedule_value(value, key).numbers():
                    check_number(key, v, rules)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                check_number(key, value, rules)
                if tp is float:
                    object.__setattr__(self, f.name, float(value))
            if isinstance(value, str):
                if "choices" in rules and value not in rules["choices"]:
                    raise ConfigError(
                        f"{key}: must be one of {', '.join(rules['choices'])}; got {excerpt(value)}"
                    )
                if "pattern" in rules and not re.fullmatch(rules["pattern"][0], value):
                    raise ConfigError(f"{key}: must be {rules['pattern'][1]}; got {excerpt(value)}")

    @classmethod
    def from_dict(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ConfigError(
                f"{cls.SECTION}: expected a mapping of keys, "  # type: ignore[attr-defined]
                f"got {excerpt(data)}"
            )
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = [k for k in data if k not in names]
        if unknown:
            raise ConfigError(
                f"{cls.SECTION}.{excerpt(unknown[0], quote=False)}: "  # type: ignore[attr-defined]
                "unknown key; valid keys: "
                f"{', '.join(names)}"
            )
        return cls(**data)
