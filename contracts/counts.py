"""The one count format of the project: 2.79B parameters, 124M tokens, 300k, 1.31T (never "G").

`format_count` prints; `parse_count` reads what users write ("20M", "1.5B", "3e18", "300k"; "G" is
accepted on input as a synonym of "B"). Both are used by every layer and the command line.
"""

from __future__ import annotations

import math
import re

SUFFIXES = (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3))
_PARSE_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
COUNT_PATTERN = r"([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[-+]?[0-9]+)?)\s*([kmbgt]?)"
_COUNT = re.compile(rf"^\s*{COUNT_PATTERN}\s*$", re.IGNORECASE)


def format_count(x: float | int | None, digits: int = 3) -> str:
    """7.3e10 -> '73B', 2.79e9 -> '2.79B', 999_936 -> '1M', 5e5 -> '500k', 42 -> '42', None -> 'n/a'.

    The value is rounded to `digits` significant digits before the suffix is chosen, so a count just
    under a power of 1,000 prints as the next unit ('1M', not '1e+03k').
    """
    if x is None:
        return "n/a"
    x = float(x)
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    rounded = float(f"{x:.{digits}g}")
    for suffix, div in SUFFIXES:
        if abs(rounded) >= div:
            v = rounded / div
            if v >= 1000:  # beyond the largest suffix: scientific
                return f"{x:.{digits}g}"
            return f"{v:.{digits}g}{suffix}"
    return f"{rounded:.{digits}g}"


def parse_count(text: str | float | int) -> float:
    """'20M' -> 2e7, '1.5B' -> 1.5e9, '1e21' -> 1e21, '300k' -> 3e5, 7 -> 7.0.

    Raises ValueError (one line naming the text) for anything that is not a finite number; the sign
    and range are the caller's to check.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a number (examples: 20M, 1.5B, 3e18)")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = _COUNT.match(str(text))
        if not m:
            raise ValueError(f"{str(text)[:60]!r} is not a number (examples: 20M, 1.5B, 3e18)")
        try:
            value = float(m.group(1)) * _PARSE_SUFFIX[m.group(2).lower()]
        except OverflowError:
            value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"{str(text)[:60]!r} is not a finite number")
    return value


def expand_counts(text: str) -> str:
    """Every count with a suffix inside an expression replaced by its value: 'N >= 2B' -> 'N >= 2000000000.0'."""
    pattern = re.compile(r"(?<![\w.])((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([kKmMbBgGtT])(?!\w)")
    return pattern.sub(lambda m: repr(float(m.group(1)) * _PARSE_SUFFIX[m.group(2).lower()]), text)
