"""Durations with units: ``"1s"``, ``"500ms"``, ``"5min"``, ``"1h"``, ``"1d"``, ``"1w"``.

A plain number is read as seconds. ``"m"`` is refused as ambiguous (minute or
month); write ``"min"``.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

SECONDS_PER = {
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}
SUGGESTIONS = {"m": "min", "mins": "min", "minute": "min", "minutes": "min", "hr": "h", "hrs": "h", "hour": "h",
               "hours": "h", "secs": "s", "second": "s", "seconds": "s", "day": "d", "days": "d", "week": "w",
               "weeks": "w"}
"""Units people write, and the one to write instead (``m`` is ambiguous: minute or month)."""
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-z]*)\s*$")
ALLOWED_UNITS = ", ".join(SECONDS_PER)
MAX_SECONDS = 100 * 366 * 86400.0
"""Longest duration accepted: 100 years."""


def parse_duration(value: object) -> float:
    """Return a duration in seconds from a number (seconds) or a string with a unit."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '5min'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if not match:
            raise ValueError(f"cannot read duration {value!r}; write e.g. '30s', '5min', '1h', '1d'")
        number, unit = match.groups()
        unit = unit or "s"
        if unit not in SECONDS_PER:
            hint = f"; write {number + SUGGESTIONS[unit]!r}" if unit in SUGGESTIONS else ""
            raise ValueError(f"unknown time unit {unit!r} in {value!r}{hint}; allowed units: {ALLOWED_UNITS}")
        seconds = float(number) * SECONDS_PER[unit]
    else:
        raise ValueError("a duration must be a number of seconds or a string like '5min'")
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_SECONDS:
        raise ValueError(f"a duration must be between 0 and 100 years (got {value!r})")
    return seconds


def format_duration(seconds: float) -> str:
    """Shortest exact string for a duration, e.g. 300 -> '5min'."""
    for unit in ("w", "d", "h", "min", "s"):
        size = SECONDS_PER[unit]
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds:g}s"


def format_clock(seconds: float) -> str:
    """A time into the run in mixed units, largest first, e.g. 3660 -> '1h 1min', 0 -> '0s'."""
    parts = []
    rest = seconds
    for unit in ("w", "d", "h", "min"):
        count = int(rest // SECONDS_PER[unit])
        if count:
            parts.append(f"{count}{unit}")
            rest -= count * SECONDS_PER[unit]
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return " ".join(parts)


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
"""A duration in seconds, read from a number or a string with a unit."""
