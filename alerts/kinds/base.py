"""The rule-kind interface: a rule kind is a pure function from (series windows, sources, memory,
now) to verdicts.

The engine reads what every rule `needs` in bulk (one query per need across all projects), then
calls `evaluate` once per (rule, project) with that project's slice. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, field_validator

from alerts.model import Verdict
from monitor.core.matchers import Matcher, Selector, parse_matchers
from monitor.core.naming import EXPORT_PREFIX, metric_name_problem
from monitor.store.interface import Reduction, SeriesPoints
from monitor.store.provided import DataKey
from monitor.store.sources import SourceStatus


class KindParams(BaseModel):
    """Base of every rule kind's params: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SeriesParams(KindParams):
    """Params of kinds that watch one metric: its name and optional label matchers."""

    metric: str
    match: list[str] = []

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        problem = metric_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("match")
    @classmethod
    def _match(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_matchers(text)
        return value

    def promql_selector(self, project: str) -> str:
        """This metric as exported on /metrics, e.g. `mlmon_accuracy{project="a",model="v7"}`."""
        inner = ",".join(part for part in [project, *(str(m) for m in self.selector().matchers)] if part)
        return f"{EXPORT_PREFIX}{self.metric}{{{inner}}}"

    def selector(self) -> Selector:
        return _selector(self.metric, tuple(self.match))


@lru_cache(maxsize=4096)
def _selector(metric: str, match: tuple[str, ...]) -> Selector:
    """Kinds ask for their selector on every evaluation; parsing the matchers once is enough."""
    matchers: list[Matcher] = []
    for text in match:
        matchers.extend(parse_matchers(text))
    return Selector(metric, tuple(matchers))


@dataclass(frozen=True, slots=True)
class SeriesNeed:
    """Series a rule reads: the newest point of each (lookback None) or a window of points.

    With `reduce`, a kind that needs only one figure of the window gets it from the database: each
    series then has one point, the newest timestamp in the window with the window's aggregate (no
    point when the window is empty). Reading 10,000 windows point by point cost more than all the
    rules' evaluation."""

    name: str
    selector: Selector
    lookback: timedelta | None = None
    reduce: Reduction | None = None

    def __post_init__(self) -> None:
        if self.reduce is not None and self.lookback is None:
            raise ValueError(f"series need {self.name!r}: reduce {self.reduce!r} needs a lookback window")


@dataclass(frozen=True, slots=True)
class ProjectView:
    id: str
    name: str
    team: str | None
    labels: Mapping[str, str]
    owners: Sequence[str]
    sources: Sequence[str]


T = TypeVar("T")


@dataclass(slots=True)
class RuleContext:
    """Everything one evaluation of one rule for one project may look at. Kinds only read it (not
    frozen for the same reason as `Verdict`: one is made per rule and project every cycle)."""

    now: datetime
    project: ProjectView
    series: Mapping[str, Sequence[SeriesPoints]]
    sources: Sequence[SourceStatus] = ()
    memory: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def data(self, key: DataKey[T]) -> T | None:
        """This project's data from the provider registered under `key` (None when it has none)."""
        return cast("T | None", self.extra.get(key.name))


@dataclass(slots=True)
class Evaluation:
    verdicts: list[Verdict]
    memory: Mapping[str, Any] | None = None
    """The kind's new memory for this (rule, project), persisted across evaluations and restarts."""


P = TypeVar("P", bound=KindParams)


@dataclass(frozen=True)
class RuleKind(Generic[P]):
    name: str
    params: type[P]
    evaluate: Callable[[P, RuleContext], Evaluation]
    summary: str
    """Default summary annotation (a template)."""
    needs: Callable[[P], list[SeriesNeed]] = lambda _params: []
    """The series the kind reads; none for kinds that read only sources or provided data."""
    uses_sources: bool = False
    uses_memory: bool = False
    extras: tuple[DataKey[Any], ...] = ()
    """The provided data the kind reads through `RuleContext.data`."""
    template_vars: tuple[str, ...] = ()
    """Names the kind puts in `Verdict.details`, usable in annotation templates."""
    promql: Callable[[P, str], str | None] | None = None
    """The rule as a PromQL expression over mlmon's /metrics (given the project selector text, e.g.
    `project=~"a|b"`), for `mlmon export prometheus-rules`; None when PromQL cannot say it."""
