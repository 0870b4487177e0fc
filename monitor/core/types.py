"""Value types shared by every layer: series keys, samples and events.

Timestamps of samples are integer milliseconds since the Unix epoch (UTC): exact to compare,
cheap to store, and the unit the store buckets on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

Labels = tuple[tuple[str, str], ...]
"""Label pairs sorted by name, so equal label sets compare and hash equal."""


def labels_of(mapping: Mapping[str, str] | None) -> Labels:
    """Return the canonical (sorted, hashable) form of a label mapping."""
    if not mapping:
        return ()
    return tuple(sorted(mapping.items()))


def labels_text(labels: Labels) -> str:
    """Canonical JSON text of a label set, as stored beside a series."""
    return json.dumps(dict(labels), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """Identity of a time series: project, metric name and labels."""

    project: str
    metric: str
    labels: Labels = ()

    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    def __str__(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in (("project", self.project), *self.labels))
        return f"{self.metric}{{{inner}}}"


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a series at a point in time."""

    series: SeriesKey
    ts_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a project, e.g. a version change ("torch 2.14.1 -> 2.15.0")."""

    project: str
    ts_ms: int
    kind: str
    subject: str
    old: str | None = None
    new: str | None = None
    message: str = ""
    source: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        if self.message:
            return self.message
        if self.old is not None or self.new is not None:
            return f"{self.subject} {self.old or '(none)'} -> {self.new or '(none)'}"
        return self.subject


def ms_from_datetime(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(round(moment.timestamp() * 1000))


def datetime_from_ms(ts_ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
