"""Durations written the Prometheus way ("30s", "5m", "1h30m", "7d", "2w").

Hand-written because no maintained library parses Prometheus duration syntax; the grammar is one
regular expression. Plain numbers are seconds.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

MAX_SECONDS = 100 * 31536000.0
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+")


def parse_duration(value: object) -> timedelta:
    """Parse a duration; raise ValueError with what was expected."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError("expected a duration like '30s', '5m' or '1h30m', got a boolean")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("-") and _WHOLE.fullmatch(text[1:]):
            raise ValueError(f"a duration cannot be negative, got {_shown(value)}")
        if not text or not _WHOLE.fullmatch(text):
            raise ValueError(f"expected a duration like '30s', '5m' or '1h30m', got {_shown(value)}")
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    else:
        raise ValueError(f"expected a duration like '30s', '5m' or '1h30m', got {type(value).__name__}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {_shown(value)}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {_shown(value)}")
    if seconds > MAX_SECONDS:
        # timedelta itself overflows near 2.7 million years; nothing mlmon schedules needs 100
        raise ValueError(f"a duration of at most 100y is accepted, got {_shown(value)}")
    return timedelta(seconds=seconds)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def format_duration(delta: timedelta) -> str:
    """Shortest Prometheus-style text for a duration (whole milliseconds)."""
    ms = int(round(delta.total_seconds() * 1000))
    if ms == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("w", 604800000), ("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    if ms:
        parts.append(f"{ms}ms")
    return "".join(parts)
