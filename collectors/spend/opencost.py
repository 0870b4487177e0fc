"""`opencost`: Kubernetes spend per project from OpenCost's allocation API.

    kind: opencost
    params:
      url: http://opencost.opencost:9003
      aggregate: label:ml-project          # or namespace, annotation:<key>
      projects: {ml-churn: churn}          # aggregate value -> project id (others kept as they are)
      currency: USD                        # OpenCost does not say; its price sheet's currency
      timezone: UTC
      backfill: 3d                         # days fetched on the first run
      refresh: 1d                          # complete days fetched again each run

One `GET /allocation?window=<day start>,<day end>&aggregate=...&accumulate=true&includeIdle=true`
per day. Per allocation: gpuCost (+ its adjustment) is GPU spend, the rest of totalCost other
spend (basis `allocated`); gpuHours are GPU-seconds held; gpuHours x gpuEfficiency are busy
GPU-seconds. OpenCost's `__unallocated__` (the label is missing) is stored as
`__unattributed__`, `__idle__` (unallocated cluster capacity) as `__idle__`.

OpenCost reports gpuEfficiency 0 when no DCGM exporter feeds it; set `efficiency: false` then,
or every GPU would look idle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from collectors.base import CollectContext, CollectResult, SourceError, SourceKind
from collectors.spend.daily import DailyTotals, withdrawn
from collectors.spend.endpoint import DayWindow, EndpointParams, day_checkpoint, days_to_fetch
from monitor.http import request_json, snippet
from monitor.spend.series import IDLE, RESERVED_ATTRIBUTIONS, UNATTRIBUTED, Basis, Scope, zone


class OpenCostParams(EndpointParams):
    path: str = Field(default="/allocation", description="/allocation (OpenCost) or /model/allocation (Kubecost)")
    aggregate: str = "namespace"
    projects: dict[str, str] = Field(default_factory=dict, description="aggregate value -> project id")
    unmapped: Literal["keep", "unattributed"] = "keep"
    include_idle: bool = True
    efficiency: bool = Field(default=True, description="false when OpenCost has no DCGM data (efficiency 0)")
    resolution: str | None = Field(default=None, description="OpenCost's query resolution, e.g. 5m")

    @field_validator("aggregate")
    @classmethod
    def _aggregate(cls, value: str) -> str:
        simple = {"cluster", "node", "namespace", "controllerKind", "controller", "service", "pod", "container"}
        if value in simple or (value.startswith(("label:", "annotation:")) and len(value.split(":", 1)[1]) > 0):
            return value
        raise ValueError(
            f"expected one of {', '.join(sorted(simple))}, label:<name> or annotation:<name>, got {value!r}"
        )

    @field_validator("projects")
    @classmethod
    def _projects(cls, value: dict[str, str]) -> dict[str, str]:
        for key, project in value.items():
            if not project or project in RESERVED_ATTRIBUTIONS:
                raise ValueError(f"projects[{key!r}]: expected a project id, got {project!r}")
        return value


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(allocation: Mapping[str, Any], field: str, where: str) -> float:
    value = allocation.get(field)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SourceError(f"{where}.{field}: expected a number, got {snippet(repr(value), 60)}")
    if not math.isfinite(value):
        return 0.0
    return float(value)


def allocation_sets(document: Any, where: str) -> list[Mapping[str, Any]]:
    """The allocation sets of an answer: `data` is a list of {name: allocation} maps (or one map)."""
    if not isinstance(document, dict):
        raise SourceError(f"{where}: expected a JSON object with code, status and data, got {snippet(str(document))}")
    code = document.get("code")
    if code not in (None, 200):
        raise SourceError(
            f"{where}: OpenCost answered code {code}: {snippet(str(document.get('message') or document))}"
        )
    data = document.get("data")
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(s, dict) for s in data):
        raise SourceError(f"{where}: expected data to be a list of allocation sets, got {snippet(str(data))}")
    return [s for s in data if s]


WINDOW_SLACK = timedelta(minutes=1)


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_window(allocation: Mapping[str, Any], window: DayWindow, now: datetime | None, at: str) -> None:
    """An allocation must cover the day asked for: OpenCost answers a window it could not parse,
    or one snapped to its own boundaries, with another window, and booking that as the day would
    move or multiply cost. Today's window may end early (at now)."""
    nested = allocation.get("window")
    span: Mapping[str, Any] = nested if isinstance(nested, dict) else allocation
    start, end = _moment(span.get("start")), _moment(span.get("end"))
    if start is None and end is None:
        return  # an answer without windows (older Kubecost) cannot be checked
    partial = now is not None and window.end > now
    fine = (
        start is not None
        and end is not None
        and abs(start - window.start) <= WINDOW_SLACK
        and (abs(end - window.end) <= WINDOW_SLACK or (partial and window.start < end <= window.end + WINDOW_SLACK))
    )
    if not fine:
        raise SourceError(
            f"{at}: OpenCost answered for {span.get('start')}..{span.get('end')}, not the requested day "
            f"{_rfc3339(window.start)}..{_rfc3339(window.end)}: refused, nothing of this run stored"
        )


class OpenCostCollector:
    def __init__(self, params: OpenCostParams) -> None:
        self.params = params
        self.tz = zone(params.timezone)

    def attribute(self, key: str) -> str:
        if IDLE in key:
            return IDLE
        if "__unallocated__" in key or not key:
            return UNATTRIBUTED
        if key in self.params.projects:
            return self.params.projects[key]
        return key if self.params.unmapped == "keep" else UNATTRIBUTED

    def add_day(
        self,
        totals: DailyTotals,
        window: DayWindow,
        sets: list[Mapping[str, Any]],
        where: str,
        now: datetime | None = None,
    ) -> None:
        for index, allocations in enumerate(sets):
            for key, allocation in allocations.items():
                at = f"{where} data[{index}][{key!r}]"
                if not isinstance(allocation, dict):
                    raise SourceError(f"{at}: expected an allocation object, got {snippet(str(allocation), 80)}")
                check_window(allocation, window, now, at)
                project = self.attribute(str(allocation.get("name") or key))
                gpu = _number(allocation, "gpuCost", at) + _number(allocation, "gpuCostAdjustment", at)
                total = _number(allocation, "totalCost", at)
                hours = _number(allocation, "gpuHours", at)
                totals.add_spend(project, Basis.ALLOCATED, Scope.GPU, window.day, gpu)
                totals.add_spend(project, Basis.ALLOCATED, Scope.OTHER, window.day, total - gpu)
                if hours > 0:
                    busy = hours * 3600 * self._efficiency(allocation, at) if self.params.efficiency else None
                    totals.add_gpu(project, window.day, hours * 3600, busy)

    def _efficiency(self, allocation: Mapping[str, Any], at: str) -> float:
        if allocation.get("gpuEfficiency") is not None:
            return min(1.0, max(0.0, _number(allocation, "gpuEfficiency", at)))
        usage, request = _number(allocation, "gpuUsageAverage", at), _number(allocation, "gpuRequestAverage", at)
        return min(1.0, usage / request) if request > 0 else 0.0

    def collect(self, ctx: CollectContext) -> CollectResult:
        p = self.params
        windows = days_to_fetch(ctx.now, self.tz, ctx.checkpoint, p.backfill, p.refresh)
        totals = DailyTotals(p.currency, self.tz)
        with p.client(ctx) as client:
            for window in windows:
                query = {
                    "window": f"{_rfc3339(window.start)},{_rfc3339(window.end)}",
                    "aggregate": p.aggregate,
                    "accumulate": "true",
                    "includeIdle": "true" if p.include_idle else "false",
                }
                if p.resolution:
                    query["resolution"] = p.resolution
                where = f"GET {p.url}{p.path} (window {query['window']})"
                document = request_json(client, "GET", p.url + p.path, params=query)
                self.add_day(totals, window, allocation_sets(document, where), where, ctx.now)
        days = {w.day for w in windows}
        readings = totals.readings(ctx.source, days)
        readings += withdrawn(ctx.reader, ctx.project, ctx.source, totals.metrics, days, self.tz, readings)
        return CollectResult(
            readings=readings, checkpoint=day_checkpoint(windows, ctx.checkpoint, ctx.now, currency=p.currency)
        )


KIND = SourceKind(
    "opencost",
    OpenCostParams,
    OpenCostCollector,
    "OpenCost allocation API: GPU and total cost, GPU-hours and efficiency per project per day",
)
