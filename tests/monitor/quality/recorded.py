"""Helpers for tests that replay recorded MLflow and Prometheus answers from a local HTTP server."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.core.clock import FrozenClock
from monitor.http import HttpFactory
from monitor.plans import SourcePlan
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.store.sources import RunRecord
from tests.support.http_server import Answer, Seen
from tests.support.peers import shared_data

RECORDED_AT = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
"""Just after the recordings were made (2026-11-25 23:42-23:48 UTC), so their timestamps are past."""


def recorded(*parts: str) -> Any:
    """A recorded JSON answer, as a fresh copy the test may edit."""
    return copy.deepcopy(json.loads(shared_data("recorded", *parts).read_text()))


def in_order(*answers: Answer) -> Callable[[Seen], Answer]:
    """A route answering each request with the next answer (the last one repeats): for pages."""
    queue = list(answers)

    def route(_seen: Seen) -> Answer:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return route


@dataclass
class Collecting:
    """Run a runtime's sources by name with a frozen clock and a chosen environment."""

    runtime: Runtime
    clock: FrozenClock
    env: Mapping[str, str] = field(default_factory=dict)

    def runner(self) -> SourceRunner:
        return SourceRunner(
            self.runtime.store, self.clock, HttpFactory(), env=dict(self.env), listeners=[self.runtime.ingested]
        )

    def plan(self, source: str) -> SourcePlan:
        return next(p for p in self.runtime.plans if p.source == source)

    def run(self, source: str) -> RunRecord:
        return self.runner().run(self.plan(source))

    def latest(self, metric: str) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        from monitor.core.matchers import Selector

        found = self.runtime.store.samples.window(Selector(metric), 0, 2**62)
        return {s.key.labels: [(p.ts_ms, p.value) for p in s.points] for s in found}


def iter_points(found: Mapping[Any, list[tuple[int, float]]]) -> Iterator[tuple[int, float]]:
    for points in found.values():
        yield from points
