"""The health of every source a page depends on: state, last success, last error, failures in a
row, next run; and the reasons it gives the verdicts (a failing bill source makes "Affordable?"
worth a look, and the cell says why).

Read in bulk for all projects: one read of the sources' states, one query for the moment each
failing source started failing (its first failed run after its last success), one read of the
advisory feeds. Which sources a question depends on:

- quality: the project's own sources that are neither spend nor stack kinds;
- spend: the spend sources its budget counts and its efficiency comes from, wherever they are
  configured (a shared bill configured in another project counts: it is shown as shared);
- stack: the project's inventory sources and, when it has any, the advisory feed (shared by all).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select

from monitor.config.models import MlmonConfig, ProjectConfig, SourceConfig
from monitor.spend.series import SPEND_KINDS
from monitor.stack.store import FeedStatus
from monitor.stack.sync import ADVISORY_FEED, STACK_KINDS
from monitor.store.schema import source_runs, source_state
from monitor.store.sources import SourceStatus
from monitor.store.store import Store

STALE_INTERVALS = 3
"""A source whose last run is older than this many intervals (plus a grace) is stale: nothing runs it."""
STALE_GRACE = timedelta(minutes=2)
MAX_ERROR = 300
"""Characters of the last error shown (the API returns it whole; a page cell stays readable)."""


class State(StrEnum):
    OK = "ok"
    FAILING = "failing"
    STALE = "stale"
    NEVER = "never run"
    DISABLED = "disabled"


FAMILIES = ("quality", "spend", "stack")


def family_of(kind: str) -> str:
    if kind in SPEND_KINDS:
        return "spend"
    if kind in STACK_KINDS:
        return "stack"
    return "quality"


@dataclass(frozen=True, slots=True)
class SourceHealth:
    project: str
    """The project the source is configured in ("" for a feed shared by every project)."""
    name: str
    kind: str
    family: str
    state: State
    last_success_at: datetime | None
    last_run_at: datetime | None
    last_error: str | None
    failures: int
    """Failures in a row."""
    failing_since: datetime | None
    next_run_at: datetime | None
    interval: timedelta | None

    @property
    def ref(self) -> str:
        return f"{self.project}/{self.name}" if self.project else self.name

    @property
    def troubled(self) -> bool:
        """Failing or stale: its question is at least worth a look."""
        return self.state in (State.FAILING, State.STALE)

    def reason(self, viewer_project: str) -> str:
        """One line for a verdict cell: `bill source failing since 10:42:07 UTC: <error>`."""
        label = self.name if self.project in ("", viewer_project) else self.ref
        what = f"{label} {'feed' if not self.project else 'source'}"
        if self.state is State.FAILING:
            since = f" since {_short(self.failing_since)}" if self.failing_since else ""
            error = f": {self.last_error}" if self.last_error else ""
            return f"{what} failing{since}{error}"
        if self.state is State.STALE:
            return f"{what} stale: last run {_short(self.last_run_at)}"
        if self.state is State.NEVER:
            return f"{what} never run"
        return f"{what} {self.state.value}"


def _short(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "never"


def _state(status: SourceStatus | None, source: SourceConfig, now: datetime) -> State:
    if not source.enabled:
        return State.DISABLED
    if status is None or status.last_run_at is None:
        return State.NEVER
    if status.last_outcome != "ok":
        return State.FAILING
    if now - status.last_run_at > source.interval * STALE_INTERVALS + STALE_GRACE:
        return State.STALE
    return State.OK


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def failing_since(engine: Engine, statuses: Iterable[SourceStatus]) -> dict[tuple[str, str], datetime]:
    """(project, source) -> the first failed run after the last success, for every failing source
    (one grouped query over the failing sources' recent runs, read through the runs' index)."""
    failing = [s for s in statuses if s.consecutive_failures > 0]
    if not failing:
        return {}
    after_success = or_(
        source_state.c.last_success_at.is_(None), source_runs.c.started_at > source_state.c.last_success_at
    )
    query = (
        select(source_runs.c.project, source_runs.c.source, func.min(source_runs.c.started_at))
        .join(
            source_state,
            and_(source_state.c.project == source_runs.c.project, source_state.c.source == source_runs.c.source),
        )
        .where(source_state.c.consecutive_failures > 0, after_success)
        .group_by(source_runs.c.project, source_runs.c.source)
    )
    with engine.connect() as conn:
        found = {(str(p), str(s)): at for p, s, at in conn.execute(query)}
    # runs are pruned after retention.source_runs: fall back to the source's first run
    for status in failing:
        fallback = status.first_run_at or status.last_run_at
        if fallback is not None:
            found.setdefault((status.project, status.source), fallback)
    return found


def feed_health(feed: FeedStatus | None, name: str) -> SourceHealth:
    """The advisory feed as a shared source: "ok" only after a successful fetch."""
    if feed is None or feed.last_attempt_at is None:
        return SourceHealth("", name, "advisory feed", "stack", State.NEVER, None, None, None, 0, None, None, None)
    state = State.OK if feed.up else State.FAILING
    return SourceHealth(
        "",
        name,
        f"advisory feed ({feed.kind})",
        "stack",
        state,
        feed.last_success_at,
        feed.last_attempt_at,
        _clip(feed.last_error),
        feed.consecutive_failures,
        None if state is State.OK else feed.last_success_at,
        None,
        None,
    )


@dataclass
class FleetSources:
    """Every source's health, by (project, name), and the advisory feed; each project's own
    sources by family worked out once (the overview asks for a thousand projects)."""

    sources: dict[tuple[str, str], SourceHealth]
    advisories: SourceHealth
    by_ref: dict[str, SourceHealth] = field(default_factory=dict)
    families: dict[str, dict[str, list[SourceHealth]]] = field(default_factory=dict)
    """project -> family -> its own enabled sources of that family."""

    def __post_init__(self) -> None:
        for (project, name), health in self.sources.items():
            self.by_ref[f"{project}/{name}"] = health
            if health.state is not State.DISABLED:
                self.families.setdefault(project, {}).setdefault(health.family, []).append(health)

    def own(self, project: ProjectConfig) -> list[SourceHealth]:
        return [self.sources[(project.id, s.name)] for s in project.sources if (project.id, s.name) in self.sources]

    def for_question(self, project: ProjectConfig, family: str, spend_refs: Sequence[str] = ()) -> list[SourceHealth]:
        """The sources the question `family` of `project` depends on (shared ones included)."""
        if family == "spend":
            found = [self.by_ref[r] for r in dict.fromkeys(spend_refs) if r in self.by_ref]
            return found
        own = self.families.get(project.id, {}).get(family, [])
        if family == "stack" and own:
            return [*own, self.advisories]
        return own

    def shown(self, project: ProjectConfig, spend_refs: Sequence[str] = ()) -> list[SourceHealth]:
        """What the project page lists: its own sources, then the shared ones it uses."""
        own = self.own(project)
        shared = [h for h in self.for_question(project, "spend", spend_refs) if h.project != project.id]
        if any(h.family == "stack" for h in own):
            shared.append(self.advisories)
        return own + shared


_CACHE: weakref.WeakKeyDictionary[Engine, tuple[tuple[Any, ...], FleetSources]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def read_fleet_sources(store: Store, config: MlmonConfig, now: datetime, feeds: Sequence[FeedStatus]) -> FleetSources:
    """Every source's health, reused while the configuration, the sources' states (their version),
    the feeds and the minute (stale is a matter of time) are the same."""
    feed_key = tuple(
        (f.name, f.last_attempt_at, f.last_success_at, f.consecutive_failures, f.last_error) for f in feeds
    )
    key = (config, now.replace(second=0, microsecond=0), feed_key, source_states_version(store.engine))
    with _CACHE_LOCK:
        cached = _CACHE.get(store.engine)
    if cached is not None and cached[0][0] is config and cached[0][1:] == key[1:]:
        return cached[1]
    fleet = _read_fleet_sources(store, config, now, store.sources.statuses(checkpoints=False), feeds)
    with _CACHE_LOCK:
        _CACHE[store.engine] = (key, fleet)
    return fleet


def source_states_version(engine: Engine) -> tuple[Any, ...]:
    """Changes whenever a source's state does: every run adds one to its runs and sets its last
    run (one aggregate over the small state table instead of reading every row)."""
    s = source_state.c
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count(), func.sum(s.runs_total), func.max(s.last_run_at))).one())


def _read_fleet_sources(
    store: Store, config: MlmonConfig, now: datetime, statuses: Sequence[SourceStatus], feeds: Sequence[FeedStatus]
) -> FleetSources:
    by_key: Mapping[tuple[str, str], SourceStatus] = {(s.project, s.source): s for s in statuses}
    since = failing_since(store.engine, statuses)
    out: dict[tuple[str, str], SourceHealth] = {}
    for project in config.projects:
        for source in project.sources:
            key = (project.id, source.name)
            status = by_key.get(key)
            state = _state(status, source, now)
            last_run = status.last_run_at if status else None
            out[key] = SourceHealth(
                project.id,
                source.name,
                source.kind,
                family_of(source.kind),
                state,
                status.last_success_at if status else None,
                last_run,
                _clip(status.last_error) if status and state is State.FAILING else None,
                status.consecutive_failures if status else 0,
                since.get(key) if state is State.FAILING else None,
                (last_run + source.interval) if last_run and source.enabled else None,
                source.interval,
            )
    advisory = next((f for f in feeds if f.name == ADVISORY_FEED), None)
    return FleetSources(out, feed_health(advisory, ADVISORY_FEED))
