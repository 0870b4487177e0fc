"""Data providers the spend rule kinds read through `RuleContext.extra`.

The `spend` provider hands each project its `ProjectSpend` (report.py): the daily figures of
every spend source attributed to it, its currency and budget. Spend sources store their readings
in the project they are configured in, labelled with the project the cost belongs to, so the
rule kinds cannot read them as their own project's series; the provider does the re-homing.

It needs the running configuration (budgets, sources, retention), which `Extra` does not pass:
`bind(config)` returns the providers bound to a configuration getter. The service wires them in
`monitor/services.py: build_engine` (see docs/spend.md, "Wiring"). Per source, what was read is
cached until the source's data version (from its checkpoint) changes or the day turns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from monitor.config.models import MlmonConfig
from monitor.spend.ledger import SourceDays, SourceState, read_days, source_states
from monitor.spend.report import ProjectSpend, days_needed, load, span
from monitor.spend.series import UNATTRIBUTED
from monitor.spend.sources import spend_sources
from monitor.store.provided import DataKey, Provider
from monitor.store.store import Store

SPEND: DataKey[ProjectSpend] = DataKey("spend")

PROVIDERS: dict[str, Provider] = {}
"""Providers that need nothing but the store: none (see `bind`)."""


class SpendProvider:
    """The `spend` provider for one configuration getter, with a per-source read cache."""

    def __init__(self, config: Callable[[], MlmonConfig]) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._cache: dict[tuple[Any, ...], dict[str, SourceDays]] = {}

    def __call__(self, store: Store, projects: frozenset[str], now: datetime) -> Mapping[str, ProjectSpend]:
        config = self.config()
        sources = spend_sources(config)
        states = source_states(store, sources)
        days_back = days_needed(config, now)
        first, last = span(now, days_back)
        wanted = frozenset(projects & config.project_ids)
        with self._lock:
            fresh: dict[tuple[Any, ...], dict[str, SourceDays]] = {}
            # GPU time no project claims is read too: the owner of its source is told when it idles
            reading = wanted | {UNATTRIBUTED}
            merged: dict[str, dict[str, SourceDays]] = {p: {} for p in reading}
            for source in sources:
                state = states.get(source.ref, SourceState(source.currency, None, None))
                key = (id(store), source, state, first, last, wanted, config.retention.raw)
                per_project = self._cache.get(key)
                if per_project is None:
                    read = read_days(
                        store,
                        [source],
                        reading,
                        first,
                        last,
                        raw_retention=config.retention.raw,
                        now=now,
                        states={source.ref: state},
                    )
                    per_project = {p: read[p][source.ref] for p in reading}
                fresh[key] = per_project
                for project, days in per_project.items():
                    merged[project][source.ref] = days
            self._cache = fresh
        return load(store, config, wanted, now, days_back, states, preloaded=merged)


def bind(config: Callable[[], MlmonConfig]) -> dict[str, Provider]:
    """The spend family's providers for the configuration `config()` returns."""
    return {SPEND.name: SpendProvider(config)}
