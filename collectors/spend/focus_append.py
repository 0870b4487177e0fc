"""Appended FOCUS files: read only the new bytes.

Exporters that write one growing CSV per month append rows. A file is taken as appended when it
is an uncompressed CSV that grew, its old part ended with a newline, and the first and last
64 KiB of the old part hash as they did (checking those ends, not the whole prefix, keeps the
check at a few milliseconds for a multi-GB file; an in-place rewrite that kept its size-and-
ends is not detected). Then only the new bytes are read (behind a copy of the header line) and
their daily totals are added to what the store holds for those series and days.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from collectors.spend.daily import DailyTotals
from collectors.spend.focus_format import HEADER_LIMIT, is_gzip
from monitor.core.matchers import Matcher, Selector
from monitor.spend.series import SOURCE, day_of_ms, day_start_ms
from monitor.store.interface import SeriesReader

EDGE = 64 << 10


def edges(path: Path, size: int) -> dict[str, Any] | None:
    """What identifies the first `size` bytes of a plain CSV later, or None when appends to it
    cannot be read alone (gzip, no newline at the end)."""
    if size == 0 or is_gzip(path):
        return None
    with path.open("rb") as handle:
        head = handle.read(min(EDGE, size))
        handle.seek(max(0, size - EDGE))
        tail = handle.read(min(EDGE, size))
    if not tail.endswith(b"\n"):
        return None
    return {"head_sha": hashlib.sha256(head).hexdigest(), "end_sha": hashlib.sha256(tail).hexdigest(), "size": size}


def appended(path: Path, entry: Mapping[str, Any]) -> int | None:
    """The old size when the file only grew since `entry` was recorded, else None."""
    mark = entry.get("append")
    if not isinstance(mark, dict):
        return None
    old = int(mark.get("size", 0))
    try:
        if path.stat().st_size <= old:
            return None
        now = edges(path, old)
    except OSError:
        return None
    return old if now == mark else None


@dataclass
class Tail:
    """The header line and the new bytes, as a CSV file DuckDB can read; deleted on exit."""

    path: Path
    offset: int

    def __enter__(self) -> Path:
        with self.path.open("rb") as source:
            header = source.readline(HEADER_LIMIT)
            source.seek(self.offset)
            handle, name = tempfile.mkstemp(prefix="mlmon-focus-tail-", suffix=".csv")
            with os.fdopen(handle, "wb") as out:
                out.write(header)
                while chunk := source.read(8 << 20):
                    out.write(chunk)
        self._copy = Path(name)
        return self._copy

    def __exit__(self, *_: object) -> None:
        self._copy.unlink(missing_ok=True)


def with_stored(tail: DailyTotals, reader: SeriesReader, project: str, source: str) -> DailyTotals:
    """The tail's totals with what the store holds for the same series and day added (series and
    days the tail does not touch are left as stored)."""
    out = DailyTotals(tail.currency, tail.tz)
    for key, per_day in tail.values.items():
        out.values[key].update(per_day)
    days = out.days
    if not days:
        return out
    start = day_start_ms(min(days), tail.tz)
    end = day_start_ms(max(days), tail.tz)
    day_of: dict[int, date] = {}  # daily samples share a few timestamps: convert each once
    for metric in sorted({metric for metric, _ in out.values}):
        selector = Selector(metric, (Matcher.of("project", "=", project), Matcher.of(SOURCE, "=", source)))
        for series in reader.window(selector, start, end):
            added = out.values.get((metric, tuple(sorted(kv for kv in series.key.labels if kv[0] != SOURCE))))
            if added is None:
                continue
            stored: dict[date, float] = {}  # a day's sample is one point; were there more, the last counts
            for point in series.points:
                day = day_of.get(point.ts_ms)
                if day is None:
                    day = day_of[point.ts_ms] = day_of_ms(point.ts_ms, tail.tz)
                if day in added:
                    stored[day] = point.value
            for day, value in stored.items():
                added[day] += value
    return out
