"""The evaluation shell: read what the rules need in bulk, run the pure rule kinds and the state
machine, persist what changed. Runs on a schedule and right after an ingest touches a rule's
series (only the touched rules and projects are evaluated then).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from alerts.compiled import CompiledRule, compile_rules, project_view
from alerts.kinds.base import ProjectView, RuleContext, RuleKind, SeriesNeed
from alerts.model import AlertInstance, AlertState, Condition, Verdict, fingerprint
from alerts.state import new_instance, step, vanished
from alerts.store import AlertStore
from alerts.templates import render
from monitor.config.models import MlmonConfig, ProjectConfig
from monitor.core.clock import Clock
from monitor.core.gc_pause import gc_paused
from monitor.core.types import Event, SeriesKey, datetime_from_ms, ms_from_datetime
from monitor.store.db import is_sqlite, write_tx
from monitor.store.interface import SeriesPoints
from monitor.store.provided import Provider
from monitor.store.sources import SourceStatus
from monitor.store.store import Store

log = logging.getLogger("mlmon.alerts.engine")

Extra = Provider

CAUSE_WINDOW = timedelta(days=30)
_CAUSE_BATCH_MIN = 8
_CAUSE_BATCH_LIMIT = 5000
_PROJECT_FILTER_MAX = 500
"""An evaluation after an ingest reads the series of the touched projects only, up to this many."""
_READERS = 4
"""Threads reading a full cycle's series needs side by side."""
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_NO_SERIES: list[SeriesPoints] = []


@dataclass
class EvalReport:
    rules: int = 0
    instances: int = 0
    changed: int = 0
    became_firing: int = 0
    resolved: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class AlertEngine:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        kinds: Mapping[str, RuleKind[Any]],
        config: Callable[[], MlmonConfig],
        extras: Mapping[str, Extra] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.alerts = AlertStore(store.engine)
        self.clock = clock
        self.kinds = kinds
        self.config = config
        self.extras = dict(extras or {})
        self.on_change = on_change
        self._lock = threading.Lock()
        self._compiled: tuple[int, list[CompiledRule]] | None = None
        self._scopes: _Scopes | None = None
        self.last_report = EvalReport()

    def rules(self) -> list[CompiledRule]:
        config = self.config()
        if self._compiled is None or self._compiled[0] != id(config):
            self._compiled = (id(config), compile_rules(config, self.kinds))
        return self._compiled[1]

    def watches(self, keys: Iterable[SeriesKey]) -> set[tuple[str, str]]:
        """(project, metric) pairs among `keys` that some rule reads."""
        metrics = {m for rule in self.rules() for m in rule.metrics}
        return {(k.project, k.metric) for k in keys if k.metric in metrics}

    def on_ingest(self, keys: set[SeriesKey]) -> None:
        touched = self.watches(keys)
        if touched:
            self.evaluate(touched)

    def evaluate(self, touched: set[tuple[str, str]] | None = None) -> EvalReport:
        """One evaluation cycle (of everything, or of the rules and projects an ingest touched)."""
        started = time.perf_counter()
        # Threads start only when a full cycle submits reads (an ingest's evaluation reads inline).
        with self._lock, gc_paused(), ThreadPoolExecutor(_READERS, thread_name_prefix="mlmon-alert-read") as pool:
            report = self._evaluate(touched, pool)
        report.seconds = time.perf_counter() - started
        if touched is None:
            self.last_report = report
        if report.changed and self.on_change is not None:
            self.on_change()
        return report

    def _evaluate(self, touched: set[tuple[str, str]] | None, pool: Executor) -> EvalReport:
        config = self.config()
        now = self.clock.now()
        report = EvalReport()
        scopes = self._scoped(config)
        plan = self._plan(scopes, touched)
        if not plan:
            return report
        rules = {rule.name: rule for rule, _ in plan}
        # An ingest touches a few projects: read (and load alerts of) only those.
        projects = None if touched is None else frozenset(p.id for _, ps in plan for p in ps)
        data = _SeriesCache(self.store, now, projects)
        if touched is None and not is_sqlite(self.store.engine):
            # Every need's read starts now, each on its own connection: PostgreSQL works on them
            # (while the driver waits without the GIL) as this thread reads the sources, the
            # extras and the alerts. Not on SQLite: its driver takes the GIL back for every row,
            # and with this thread busy each row then waits for a GIL switch (the cycle took 1.7x
            # as long).
            data.prefetch([need for rule, _ in plan for need in rule.needs], pool)
        sources = self._sources(plan)
        extras = self._extras(plan, now)
        views = scopes.views
        with write_tx(self.store.engine) as conn:
            existing = self.alerts.load(conn, rules, projects)
            memory = self.alerts.memory(conn, [r.name for r, _ in plan if r.kind.uses_memory])
            changed: list[AlertInstance] = []
            dropped: list[tuple[str, str]] = []
            new_memory: dict[tuple[str, str], Mapping[str, Any]] = {}
            by_scope: dict[tuple[str, str | None], list[AlertInstance]] = defaultdict(list)
            for instance in existing.values():
                by_scope[(instance.rule, instance.project)].append(instance)
            # (rule, project) pairs with a stored alert, by column and by label: elsewhere only a
            # firing verdict can make one, so the others need no fingerprint.
            alerted = set(by_scope) | {(i.rule, i.labels.get("project")) for i in existing.values()}
            for rule, projects_of_rule in plan:
                report.rules += 1
                kind = rule.kind
                rule_name = rule.name
                evaluate, params = kind.evaluate, rule.params
                uses_memory, extra_names = kind.uses_memory, [key.name for key in kind.extras]
                tables: list[tuple[str, Mapping[str, list[SeriesPoints]]]] | None = None
                for project in projects_of_rule:
                    pid = project.id
                    try:
                        if tables is None:  # read on first use, and again after a failed read
                            tables = [(n.name, data.table(n)) for n in rule.needs]
                        ctx = RuleContext(
                            now,
                            views[pid],
                            {need: table.get(pid, _NO_SERIES) for need, table in tables},
                            sources.get(pid, ()),
                            memory.get((rule_name, pid), _EMPTY) if uses_memory else _EMPTY,
                            {extra: extras.get(extra, _EMPTY).get(pid) for extra in extra_names}
                            if extra_names
                            else _EMPTY,
                        )
                        evaluation = evaluate(params, ctx)
                    except Exception as exc:
                        log.exception("rule %s failed for project %s", rule_name, pid)
                        report.failures[f"{rule_name}/{pid}"] = f"{type(exc).__name__}: {exc}"
                        continue
                    if evaluation.memory is not None:
                        new_memory[(rule_name, pid)] = evaluation.memory
                    verdicts = evaluation.verdicts
                    if (rule_name, pid) not in alerted:
                        # Nothing stored for this rule and project: only a firing verdict can
                        # change anything (most pairs, most cycles), and no alert can vanish.
                        report.instances += len(verdicts)
                        firing = [v for v in verdicts if v.condition is Condition.FIRE]
                        if firing:
                            report.instances -= len(firing)
                            self._apply(rule, project, firing, existing, now, changed, dropped, report)
                        continue
                    seen = self._apply(rule, project, verdicts, existing, now, changed, dropped, report)
                    for instance in by_scope.get((rule_name, pid), ()):
                        if instance.fingerprint not in seen and instance.state in (
                            AlertState.PENDING,
                            AlertState.FIRING,
                        ):
                            after = vanished(instance, now)
                            if after != instance:
                                changed.append(after)
            self._likely_causes(changed, now)
            self.alerts.save(conn, changed, now)
            self.alerts.delete_inactive(conn, dropped)
            if new_memory:
                self.alerts.put_memory(conn, new_memory, now)
        report.changed = len(changed) + len(dropped)
        return report

    def _scoped(self, config: MlmonConfig) -> _Scopes:
        """The projects of each rule and the project views, worked out once per configuration."""
        rules = self.rules()
        scopes = self._scopes
        if scopes is None or scopes.config is not config or scopes.rules is not rules:
            scopes = _Scopes(
                config,
                rules,
                [(rule, [p for p in config.projects if rule.applies_to(p)]) for rule in rules],
                {p.id: project_view(p) for p in config.projects},
            )
            self._scopes = scopes
        return scopes

    @staticmethod
    def _plan(scopes: _Scopes, touched: set[tuple[str, str]] | None) -> list[tuple[CompiledRule, list[ProjectConfig]]]:
        plan = []
        for (rule, projects), positions in zip(scopes.projects, scopes.positions, strict=True):
            if touched is not None:
                metrics = rule.metrics
                hit = {project for project, metric in touched if metric in metrics}
                projects = [projects[i] for i in sorted(positions[p] for p in hit if p in positions)]
            if projects:
                plan.append((rule, projects))
        return plan

    def _sources(self, plan: Sequence[tuple[CompiledRule, list[ProjectConfig]]]) -> dict[str, list[SourceStatus]]:
        if not any(rule.kind.uses_sources for rule, _ in plan):
            return {}
        out: dict[str, list[SourceStatus]] = defaultdict(list)
        for status in self.store.sources.statuses(checkpoints=False):
            out[status.project].append(status)
        return out

    def _extras(
        self, plan: Sequence[tuple[CompiledRule, list[ProjectConfig]]], now: datetime
    ) -> dict[str, Mapping[str, Any]]:
        wanted: dict[str, set[str]] = defaultdict(set)
        for rule, projects in plan:
            for key in rule.kind.extras:
                wanted[key.name].update(p.id for p in projects)
        out: dict[str, Mapping[str, Any]] = {}
        for name, ids in wanted.items():
            provider = self.extras.get(name)
            if provider is None:
                log.error("no data provider %r is registered; rules that need it see nothing", name)
                continue
            out[name] = provider(self.store, frozenset(ids), now)
        return out

    def _apply(
        self,
        rule: CompiledRule,
        project: ProjectConfig,
        verdicts: Sequence[Verdict],
        existing: Mapping[tuple[str, str], AlertInstance],
        now: datetime,
        changed: list[AlertInstance],
        dropped: list[tuple[str, str]],
        report: EvalReport,
    ) -> set[str]:
        """Step each verdict's alert; returns the fingerprints seen."""
        seen: set[str] = set()
        name = rule.name
        for verdict in verdicts:
            labels = {**verdict.labels, **rule.config.labels, "alertname": name, "project": project.id}
            fp = fingerprint(labels)
            seen.add(fp)
            report.instances += 1
            prev = existing.get((name, fp))
            if prev is None:
                if verdict.condition is not Condition.FIRE:
                    continue  # a healthy series that never alerted stores nothing
                prev = new_instance(name, fp, project.id, labels)
            after = step(prev, verdict.condition, verdict.value, rule.timing, now)
            if after.state is AlertState.INACTIVE:
                if prev.id is not None:
                    dropped.append((name, fp))
                continue
            if _needs_render(prev, after):
                after = after.evolve(annotations=_annotations(rule, project, after, verdict))
            if after.state is AlertState.FIRING and prev.state is not AlertState.FIRING:
                report.became_firing += 1
            if after.state is AlertState.RESOLVED and prev.state is AlertState.FIRING:
                report.resolved += 1
            if _material(prev, after):
                changed.append(after)
        return seen

    def _likely_causes(self, changed: list[AlertInstance], now: datetime) -> None:
        """Name the nearest preceding event of the project in each newly active alert."""
        wanted: list[tuple[int, AlertInstance, int]] = []
        for index, instance in enumerate(changed):
            if instance.project is None or instance.state not in (AlertState.PENDING, AlertState.FIRING):
                continue
            if "likely_cause" in instance.annotations or instance.active_at is None:
                continue
            wanted.append((index, instance, ms_from_datetime(instance.active_at)))
        if not wanted:
            return
        latest_before = self._events_before([at for _, _, at in wanted])
        for index, instance, at in wanted:
            assert instance.project is not None
            event = latest_before(instance.project, at)
            if event is None or at - event.ts_ms > CAUSE_WINDOW.total_seconds() * 1000:
                continue
            when = datetime_from_ms(event.ts_ms).strftime("%Y-%m-%d %H:%M UTC")
            cause = f"{event.describe()} ({event.kind}, {when})"
            changed[index] = instance.evolve(annotations={**instance.annotations, "likely_cause": cause})

    def _events_before(self, ats: list[int]) -> Callable[[str, int], Event | None]:
        """`EventStore.latest_before` for many alerts. Only an event within CAUSE_WINDOW of the
        alert counts, so for many alerts one query of the events in [earliest - window, latest]
        answers them all, unless it hits its limit (then: one query per alert)."""
        if len(ats) < _CAUSE_BATCH_MIN:
            return self.store.events.latest_before
        window_ms = int(CAUSE_WINDOW.total_seconds() * 1000)
        found = self.store.events.events(since_ms=min(ats) - window_ms, until_ms=max(ats), limit=_CAUSE_BATCH_LIMIT)
        if len(found) >= _CAUSE_BATCH_LIMIT:
            return self.store.events.latest_before
        by_project: dict[str, list[Event]] = defaultdict(list)
        for event in found:  # newest first, as latest_before orders them
            by_project[event.project].append(event)

        def latest_before(project: str, at: int) -> Event | None:
            return next((e for e in by_project.get(project, ()) if e.ts_ms <= at), None)

        return latest_before


@dataclass
class _Scopes:
    """What a configuration fixes for evaluation: each rule's projects and the projects' views as
    rule kinds see them."""

    config: MlmonConfig
    rules: list[CompiledRule]
    projects: list[tuple[CompiledRule, list[ProjectConfig]]]
    views: dict[str, ProjectView]
    positions: list[dict[str, int]] = field(init=False)
    """Per rule, where each of its projects is in its list (an ingest's evaluation keeps that order)."""

    def __post_init__(self) -> None:
        self.positions = [{p.id: i for i, p in enumerate(projects)} for _, projects in self.projects]


def _needs_render(prev: AlertInstance, after: AlertInstance) -> bool:
    return (
        prev.state is not after.state
        or prev.value != after.value
        or prev.nodata != after.nodata
        or not prev.annotations
    )


def _material(prev: AlertInstance, after: AlertInstance) -> bool:
    """Worth a write: anything but the evaluation timestamp changed."""
    return prev.id is None or prev.evolve(last_eval_at=None) != after.evolve(last_eval_at=None)


def _annotations(rule: CompiledRule, project: ProjectConfig, alert: AlertInstance, verdict: Verdict) -> dict[str, str]:
    variables = {
        "labels": dict(alert.labels),
        "value": alert.value,
        "project": {
            "id": project.id,
            "name": project.display_name,
            "team": project.team,
            "owners": [o.name for o in project.owners],
            "labels": dict(project.labels),
        },
        "rule": {"name": rule.name, "kind": rule.kind.name},
        "params": rule.params.model_dump(mode="json"),
        "details": dict(verdict.details),
        "state": alert.state.value,
    }
    rendered = render(rule.annotations, variables)
    if "likely_cause" in alert.annotations:
        rendered["likely_cause"] = alert.annotations["likely_cause"]
    return {k: v for k, v in rendered.items() if v != ""}


_NeedKey = tuple[str, timedelta | None, str | None]


def _need_key(need: SeriesNeed) -> _NeedKey:
    return (str(need.selector), need.lookback, need.reduce)


class _SeriesCache:
    """Series data for one cycle: each distinct need is read once, for every project at once (or
    for `projects` only, when an ingest touched a few)."""

    def __init__(self, store: Store, now: datetime, projects: frozenset[str] | None = None) -> None:
        self.store = store
        self.now = now
        self.projects = projects if projects is not None and len(projects) <= _PROJECT_FILTER_MAX else None
        self._data: dict[_NeedKey, dict[str, list[SeriesPoints]]] = {}
        self._reading: dict[_NeedKey, Future[dict[str, list[SeriesPoints]]]] = {}

    def prefetch(self, needs: Iterable[SeriesNeed], pool: Executor) -> None:
        """Start reading each distinct need in `pool`; `table` then waits for its read."""
        for need in needs:
            key = _need_key(need)
            if key not in self._data and key not in self._reading:
                self._reading[key] = pool.submit(self._read, need)

    def table(self, need: SeriesNeed) -> dict[str, list[SeriesPoints]]:
        """The need's series of every project, by project. A read that failed raises here once, and
        the next call reads again."""
        key = _need_key(need)
        if key not in self._data:
            reading = self._reading.pop(key, None)
            self._data[key] = reading.result() if reading is not None else self._read(need)
        return self._data[key]

    def _read(self, need: SeriesNeed) -> dict[str, list[SeriesPoints]]:
        end = ms_from_datetime(self.now)
        samples = self.store.samples
        if need.lookback is None:
            found = samples.latest_many(need.selector, end, projects=self.projects)
        else:
            start = end - int(need.lookback.total_seconds() * 1000)
            if need.reduce is None:
                found = samples.window(need.selector, start, end, projects=self.projects)
            else:
                found = samples.window_reduced(need.selector, start, end, need.reduce, projects=self.projects)
        by_project: dict[str, list[SeriesPoints]] = defaultdict(list)
        for series in found:
            by_project[series.key.project].append(series)
        return by_project
