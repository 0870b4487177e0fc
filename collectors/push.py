"""`push`: samples arrive through `POST /api/v1/samples`; this source only checks their freshness.

Each expected series must have a sample no older than its `max_age`; otherwise the source fails
with the series named, so a silent evaluation job shows up as a failed source (and `source_down`).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from collectors.base import CollectContext, CollectResult, Params, SourceError, SourceKind
from monitor.config.types import Duration, LabelSet, MetricName
from monitor.core.durations import format_duration
from monitor.core.types import SeriesKey, datetime_from_ms, labels_of, ms_from_datetime


class ExpectedSeries(Params):
    metric: MetricName
    labels: LabelSet = Field(default_factory=dict)
    max_age: Duration = timedelta(hours=1)


class PushParams(Params):
    expect: list[ExpectedSeries] = Field(default_factory=list)


class PushCollector:
    def __init__(self, params: PushParams) -> None:
        self.params = params

    def collect(self, ctx: CollectContext) -> CollectResult:
        problems: list[str] = []
        now_ms = ms_from_datetime(ctx.now)
        for expected in self.params.expect:
            key = SeriesKey(ctx.project, expected.metric, labels_of(expected.labels))
            latest = ctx.reader.latest(key)
            if latest is None:
                problems.append(f"no sample of {key} has been pushed yet")
                continue
            age = timedelta(milliseconds=now_ms - latest.ts_ms)
            if age > expected.max_age:
                at = datetime_from_ms(latest.ts_ms).isoformat()
                problems.append(
                    f"newest sample of {key} is {format_duration(age)} old "
                    f"(at {at}; max_age {format_duration(expected.max_age)})"
                )
        if problems:
            raise SourceError("; ".join(problems))
        return CollectResult()


KIND = SourceKind("push", PushParams, PushCollector, "samples pushed to the API; checks their freshness")
