"""Short, one-line renderings of user-supplied text for error messages.

Errors are printed by the CLI as ONE line, so anything the user typed or wrote in a file is
shown through :func:`excerpt`: cut to a few dozen characters (``...`` marks the cut) and with
newlines and other control characters escaped as in ``repr``. This module imports nothing of
the package, so every other module may use it without an import cycle.
"""

from __future__ import annotations

import math
import re
import reprlib

# reprlib bounds containers, long ints and nested values, so an excerpt of a huge YAML value
# (say a list that aliases expand to millions of items) costs no more than a short one.
_REPR = reprlib.Repr()
_REPR.maxlevel = 3


def _escaped(ch: str, quote: bool) -> str:
    """``ch`` as it may appear inside a one-line message."""
    if not ch.isprintable() or (quote and ch == "\\"):
        return repr(ch)[1:-1]  # "\n" -> \n, "\x00" -> \x00, "\u2028" -> \u2028
    if quote and ch == "'":
        return "\\'"
    return ch


def excerpt(value: object, limit: int = 40, *, quote: bool = True) -> str:
    """At most about ``limit`` characters of ``value``, on one line, ending in ``...`` if cut.

    Strings are shown in single quotes, escaped like ``repr`` (``'a\\nb'``); ``quote=False``
    shows them bare (keys, numbers, file names), still with control characters escaped. Other
    values are shown through a size-bounded ``repr``. The cost does not grow with ``value``.
    """
    if isinstance(value, str):
        text = value
    else:
        try:
            text = _REPR.repr(value)
        except ValueError:  # an int of over 4,300 digits has no decimal repr in Python 3.11+
            text = f"<an integer of {value.bit_length():,} bits>"  # type: ignore[attr-defined]
        quote = False  # a repr already quotes and escapes the strings inside it
    out: list[str] = []
    used, cut = 0, False
    for ch in text[:limit]:  # never look further than ``limit`` characters
        piece = _escaped(ch, quote)
        if used + len(piece) > limit:
            cut = True
            break
        out.append(piece)
        used += len(piece)
    cut = cut or len(text) > limit
    shown = "".join(out)
    return (f"'{shown}'" if quote else shown) + ("..." if cut else "")


def path_text(path: object) -> str:
    """A file name for a one-line message: whole, unless absurdly long or multi-line."""
    return excerpt(str(path), 300, quote=False)


def plural(n: int, noun: str) -> str:
    """``"1 step"``, ``"3 steps"``: a count with its noun (regular plurals only)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# A number as a user writes one in a setting's text (a schedule's keyframe, a mask's bounds,
# a key's tolerance): digits with an optional fraction, or a fraction alone, and an optional
# exponent. No sign, no "inf", "nan" or "1_000": those are refused where text is parsed.
NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER = re.compile(NUMBER)


def number(text: str) -> float | None:
    """``text`` as a finite number by the one rule (:data:`NUMBER`), or ``None``."""
    text = text.strip()
    if len(text) > 400 or not _NUMBER.fullmatch(text):  # 400 digits and more make inf anyway
        return None
    value = float(text)
    return value if math.isfinite(value) else None
