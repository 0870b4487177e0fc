"""What collectors and the alert engine may ask of the store (protocols only, no SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from monitor.core.matchers import Selector
from monitor.core.types import Event, SeriesKey

Aggregation = Literal["avg", "min", "max", "last", "sum", "count"]
Reduction = Literal["last", "avg", "min", "max"]
"""What a window of points can be reduced to in the database for the alert engine."""


@dataclass(frozen=True, slots=True)
class Point:
    ts_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class SeriesPoints:
    """A series and its points in time order."""

    key: SeriesKey
    points: list[Point]


class SeriesReader(Protocol):
    """Read access to stored series."""

    def latest(self, key: SeriesKey) -> Point | None: ...

    def window(self, selector: Selector, start_ms: int, end_ms: int) -> list[SeriesPoints]: ...


class EventReader(Protocol):
    def events(
        self,
        project: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[Event]: ...
