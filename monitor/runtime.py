"""The running service's shared state: settings, store, current configuration, reloaders.

A reload parses and checks the whole new file first; if it is refused, the old configuration
keeps running and `mlmon_config_last_reload_successful` drops to 0. Subsystems (scheduler, alert
engine) register named reloaders, applied in order, as Prometheus does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.exc import SQLAlchemyError

from alerts.compiled import alerting_checks
from alerts.kinds import REGISTRY as RULE_KINDS
from collectors import REGISTRY
from collectors.base import SourceKind
from collectors.checks import check_sources
from collectors.spend import checks as spend_checks
from monitor.auth.tokens import TokenStore
from monitor.config.diff import config_changes
from monitor.config.loader import ExtraCheck, Overlay, load_config
from monitor.config.models import MlmonConfig
from monitor.config.overrides import Override, apply_overrides
from monitor.config.settings import Settings
from monitor.core.clock import Clock, SystemClock
from monitor.core.errors import ConfigError, Issue
from monitor.core.text_cap import cap_text
from monitor.core.types import Event, SeriesKey, ms_from_datetime
from monitor.exposition import StoreCollector, build_registry
from monitor.plans import SourcePlan, build_plans
from monitor.quality import checks as quality_checks
from monitor.stack import checks as stack_checks
from monitor.store.changes import Change
from monitor.store.db import write_tx
from monitor.store.overrides import OverrideStore
from monitor.store.store import Store
from monitor.telemetry import Telemetry

log = logging.getLogger("mlmon.runtime")

Reloader = Callable[[MlmonConfig, list[SourcePlan]], None]


def config_checks(kinds: Mapping[str, SourceKind[Any]] = REGISTRY) -> list[ExtraCheck]:
    """Every check a configuration file must pass beyond its schema."""
    return [
        check_sources(kinds),
        *alerting_checks(RULE_KINDS),
        *stack_checks.CHECKS,
        *quality_checks.CHECKS,
        *spend_checks.CHECKS,
    ]


@dataclass(frozen=True)
class ReloadOutcome:
    ok: bool
    error: ConfigError | None = None
    changed_projects: tuple[str, ...] = ()


@dataclass
class Runtime:
    settings: Settings
    store: Store
    clock: Clock
    kinds: Mapping[str, SourceKind[Any]]
    telemetry: Telemetry
    metrics: CollectorRegistry
    config: MlmonConfig
    plans: list[SourcePlan]
    tokens: TokenStore
    extra_checks: list[ExtraCheck] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)
    reloaders: list[tuple[str, Reloader]] = field(default_factory=list)
    ingest_listeners: list[Callable[[set[SeriesKey]], None]] = field(default_factory=list)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        kinds: Mapping[str, SourceKind[Any]] = REGISTRY,
        extra_checks: Sequence[ExtraCheck] = (),
    ) -> Runtime:
        """Load the configuration (raising ConfigError if it is invalid) and open the store."""
        checks = [*config_checks(kinds), *extra_checks]
        store = store or Store.open(settings.database_url)
        overrides = _stored_overrides(store)
        config = load_config(settings.config, checks, _overlay(overrides))
        registry = CollectorRegistry()
        telemetry = Telemetry(registry)
        runtime = cls(
            settings=settings,
            store=store,
            clock=clock or SystemClock(),
            kinds=kinds,
            telemetry=telemetry,
            metrics=registry,
            config=config,
            plans=build_plans(config, kinds),
            tokens=TokenStore(store.engine),
            extra_checks=checks,
            overrides=overrides,
        )
        runtime.metrics = build_registry(registry, StoreCollector(store, lambda: runtime.config, runtime.clock))
        telemetry.reload_successful.set(1)
        telemetry.reload_timestamp.set(runtime.clock.now().timestamp())
        return runtime

    def on_reload(self, name: str, reloader: Reloader) -> None:
        self.reloaders.append((name, reloader))

    def on_ingest(self, listener: Callable[[set[SeriesKey]], None]) -> None:
        self.ingest_listeners.append(listener)

    def ingested(self, keys: set[SeriesKey]) -> None:
        for listener in list(self.ingest_listeners):
            try:
                listener(keys)
            except Exception:
                log.exception("ingest listener failed")

    def reload(
        self,
        actor: str = "system",
        overrides: list[Override] | None = None,
        reason: str | None = None,
        log_changes: bool = True,
        proposed: bool = False,
    ) -> ReloadOutcome:
        """Re-read the configuration file (and lay `overrides`, or the stored ones, over it); keep the
        running configuration if the result is refused. `log_changes` is off when another process
        already logged the change this reload picks up. A `proposed` change (an owner's, through the
        API) that is refused says nothing about the file: the reload gauge is left alone."""
        with self._reload_lock:
            chosen = self.overrides if overrides is None else overrides
            try:
                new = load_config(self.settings.config, self.extra_checks, _overlay(chosen))
                plans = build_plans(new, self.kinds)
            except ConfigError as exc:
                if proposed:
                    log.info("a proposed change by %s was refused:\n%s", actor, cap_text(str(exc)))
                    return ReloadOutcome(False, exc)
                log.error("configuration reload refused, keeping the running configuration:\n%s", cap_text(str(exc)))
                self.telemetry.reload_successful.set(0)
                return ReloadOutcome(False, exc)
            old = self.config
            for name, reloader in self.reloaders:
                try:
                    reloader(new, plans)
                except Exception as exc:
                    log.exception("reloader %s failed; restoring the previous configuration", name)
                    for _, undo in self.reloaders:
                        try:
                            undo(old, self.plans)
                        except Exception:
                            log.exception("restoring reloader failed")
                    self.telemetry.reload_successful.set(0)
                    path = str(self.settings.config)
                    return ReloadOutcome(
                        False, ConfigError(path, [Issue(path, f"applying it failed in {name}: {exc}")])
                    )
            self.config, self.plans, self.overrides = new, plans, list(chosen)
            changed = _changed_projects(old, new)
            if log_changes:
                self._record_changes(changed, actor)
                self._log_changes(old, new, actor, reason)
            self.telemetry.reload_successful.set(1)
            self.telemetry.reload_timestamp.set(self.clock.now().timestamp())
            log.info("configuration reloaded (%d projects, %d sources)", len(new.projects), len(plans))
            return ReloadOutcome(True, changed_projects=tuple(changed))

    def refresh_overrides(self) -> bool:
        """Pick up overrides another process stored; True when the configuration was re-applied."""
        stored = _stored_overrides(self.store)
        if stored == self.overrides:
            return False
        return self.reload("overrides", stored, log_changes=False).ok

    def _log_changes(self, old: MlmonConfig, new: MlmonConfig, actor: str, reason: str | None = None) -> None:
        now = self.clock.now()
        details = {"reason": reason} if reason else {}
        entries = [Change(now, actor, "config.reload", None, str(self.settings.config), details)]
        entries += [Change(now, actor, c.action, c.project, c.target, c.details) for c in config_changes(old, new)]
        try:
            with write_tx(self.store.engine) as conn:
                for entry in entries:
                    self.store.changes.record(entry, conn)
        except Exception:
            log.exception("writing the change log failed")

    def _record_changes(self, changed: Mapping[str, str], actor: str) -> None:
        if not changed:
            return
        now = ms_from_datetime(self.clock.now())
        events = [
            Event(
                project,
                now,
                "config_change",
                "configuration",
                message=f"configuration reloaded: {what}",
                source=None,
                labels={"actor": actor},
            )
            for project, what in changed.items()
        ]
        try:
            self.store.events.add(events)
        except Exception:
            log.exception("recording configuration change events failed")


def _stored_overrides(store: Store) -> list[Override]:
    try:
        return OverrideStore(store.engine).all()
    except SQLAlchemyError:
        return []  # a database not migrated yet has none; serve migrates it, then finds none anyway


def _overlay(overrides: list[Override]) -> Overlay | None:
    if not overrides:
        return None
    return lambda data: apply_overrides(data, overrides)


def _changed_projects(old: MlmonConfig, new: MlmonConfig) -> dict[str, str]:
    """project id -> what changed, for projects whose configuration differs."""
    before = {p.id: p for p in old.projects}
    out: dict[str, str] = {}
    for project in new.projects:
        prior = before.get(project.id)
        if prior is None:
            out[project.id] = "project added"
            continue
        fields = [name for name in type(project).model_fields if getattr(project, name) != getattr(prior, name)]
        if fields:
            out[project.id] = "changed " + ", ".join(fields)
    return out
