"""The collector interface: what a source kind is, what it is given, and what it returns.

A source kind is a `SourceKind`: a name, a pydantic model of its params, and a factory that
builds a `Collector` from validated params. `collect(ctx)` returns a `CollectResult` or raises
`SourceError` with the source's own reason; the runner times it, validates what came back,
stores it, and records the outcome. Adding a kind is one module plus one line in `collectors/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from monitor.core.errors import SourceError, SourceUnavailable
from monitor.http import HttpFactory
from monitor.store.interface import EventReader, SeriesReader

__all__ = [
    "CollectContext",
    "CollectResult",
    "Collector",
    "EventDraft",
    "Params",
    "Reading",
    "SourceError",
    "SourceKind",
    "SourceUnavailable",
]


class Params(BaseModel):
    """Base of every kind's params: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class Reading:
    """One value a source read. `ts` None means "at the time of the run"."""

    metric: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventDraft:
    """Something a source noticed, e.g. a version change."""

    kind: str
    subject: str
    old: str | None = None
    new: str | None = None
    message: str = ""
    ts: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CollectResult:
    """What one run produced. `checkpoint` (when not None) replaces the stored resume state."""

    readings: list[Reading] = field(default_factory=list)
    events: list[EventDraft] = field(default_factory=list)
    checkpoint: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class CollectContext:
    """Everything a collector may use during one run."""

    project: str
    source: str
    now: datetime
    timeout: float
    reader: SeriesReader
    events: EventReader
    checkpoint: Mapping[str, Any]
    http: HttpFactory
    env: Mapping[str, str]


class Collector(Protocol):
    def collect(self, ctx: CollectContext) -> CollectResult: ...


P = TypeVar("P", bound=Params)


@dataclass(frozen=True)
class SourceKind(Generic[P]):
    """A kind of source: its params schema and how to build a collector from them."""

    name: str
    params: type[P]
    build: Callable[[P], Collector]
    summary: str

    def create(self, raw: Mapping[str, Any]) -> Collector:
        return self.build(self.params.model_validate(dict(raw)))


def env_value(env: Mapping[str, str], name: str, what: str) -> str:
    """A credential from the environment, or a SourceError naming the variable."""
    value = env.get(name)
    if value is None:
        raise SourceError(f"environment variable {name} ({what}) is not set")
    return value
