"""`prometheus`: PromQL instant or range queries against a Prometheus HTTP API.

    params:
      url: http://prometheus:9090
      queries:
        - query: avg by (model) (model_accuracy{env="prod"})
          metric: accuracy
          labels: {source_env: prod}            # static labels added to every series
          label_map: {model: model}             # series label <- result label (only these are kept)
        - query: sum by (model) (rate(predictions_total[5m]))
          metric: prediction_rate
          range: 1h                             # query_range over [now - 1h, now] ...
          step: 5m                              # ... one point per step

Without `label_map`, every result label is kept except `__name__` and the names mlmon reserves
(job, instance, project, le, quantile). Prometheus's own errors (`bad_data`, `execution`, ...) fail
the source with Prometheus's message; so does a query returning no series, a string, a NaN or an
infinite value, or two series that become one after the label mapping: nothing is invented.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import Field, field_validator, model_validator

from collectors.access import HttpAccess
from collectors.base import (
    CollectContext,
    CollectResult,
    Params,
    Reading,
    SourceError,
    SourceKind,
    SourceUnavailable,
)
from monitor.config.types import Duration, LabelSet, MetricName
from monitor.core.naming import RESERVED_LABELS, label_name_problem
from monitor.http import parse_json, send, snippet

DROPPED = frozenset({"__name__"}) | RESERVED_LABELS
MAX_POINTS = 11_000  # Prometheus refuses a range query with more points per series


class QuerySpec(Params):
    query: str = Field(min_length=1)
    metric: MetricName
    labels: LabelSet = Field(default_factory=dict)
    label_map: dict[str, str] | None = Field(default=None, description="series label <- result label")
    range: Duration | None = Field(default=None, description="read [now - range, now] with query_range")
    step: Duration = timedelta(minutes=1)
    allow_empty: bool = Field(default=False, description="an empty result is a success with no readings")

    @field_validator("label_map")
    @classmethod
    def _label_map(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name in value or {}:
            problem = label_name_problem(name)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _range(self) -> QuerySpec:
        if self.range is not None:
            if self.step <= timedelta(0):
                raise ValueError("step must be positive")
            points = self.range / self.step
            if points > MAX_POINTS:
                raise ValueError(f"range / step is {points:.0f} points; Prometheus allows {MAX_POINTS} per series")
        if self.label_map is not None and set(self.label_map) & set(self.labels):
            raise ValueError("a label is given both in labels and in label_map")
        return self


class PrometheusParams(HttpAccess):
    queries: list[QuerySpec] = Field(min_length=1)


class PrometheusCollector:
    def __init__(self, params: PrometheusParams) -> None:
        self.params = params

    def collect(self, ctx: CollectContext) -> CollectResult:
        p = self.params
        readings: list[Reading] = []
        with p.client(ctx) as client:
            for spec in p.queries:
                data = _query(client, spec, ctx.now)
                readings.extend(_readings(spec, data))
        return CollectResult(readings=readings)


def _query(client: httpx.Client, spec: QuerySpec, now: datetime) -> dict[str, Any]:
    if spec.range is None:
        path, form = "/api/v1/query", {"query": spec.query, "time": f"{now.timestamp():.3f}"}
    else:
        start = now - spec.range
        form = {
            "query": spec.query,
            "start": f"{start.timestamp():.3f}",
            "end": f"{now.timestamp():.3f}",
            "step": f"{spec.step.total_seconds():g}",
        }
        path = "/api/v1/query_range"
    response = send(client, "POST", path, data=form)
    where = f"query {spec.query!r}"
    body: Any = None
    if "json" in response.headers.get("content-type", ""):
        body = parse_json(response, f"POST {path}")
    if isinstance(body, dict) and body.get("status") == "error":
        kind, text = body.get("errorType", "error"), body.get("error", "")
        message = f"Prometheus {kind}: {text} ({where}, HTTP {response.status_code})"
        if response.status_code == 503 or body.get("errorType") in ("timeout", "canceled", "unavailable"):
            raise SourceUnavailable(message)
        raise SourceError(message)
    if response.status_code >= 500 or response.status_code == 429:
        raise SourceUnavailable(f"POST {path} answered {response.status_code}: {snippet(response.text)}")
    if not response.is_success or not isinstance(body, dict):
        raise SourceError(
            f"POST {client.base_url}{path} answered {response.status_code} {response.headers.get('content-type', '')}: "
            f"{snippet(response.text)} (is url the Prometheus server's base URL?)"
        )
    data = body.get("data")
    if body.get("status") != "success" or not isinstance(data, dict):
        raise SourceError(f"{where}: unexpected answer {snippet(str(body))}")
    return data


def _readings(spec: QuerySpec, data: dict[str, Any]) -> list[Reading]:
    where = f"query {spec.query!r}"
    kind, result = data.get("resultType"), data.get("result")
    if kind == "string":
        raise SourceError(f"{where} returned a string ({snippet(str(result), 60)}), expected numbers")
    if kind == "scalar":
        if not isinstance(result, list) or len(result) != 2:
            raise SourceError(f"{where}: malformed scalar {snippet(str(result))}")
        return [Reading(spec.metric, _value(result[1], where), dict(spec.labels), _ts(result[0], where))]
    if kind not in ("vector", "matrix") or not isinstance(result, list):
        raise SourceError(f"{where}: unexpected result type {kind!r}")
    if not result:
        if spec.allow_empty:
            return []
        raise SourceError(f"{where} returned no series")
    readings: list[Reading] = []
    seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for item in result:
        raw_labels = item.get("metric") or {}
        labels = _map_labels(spec, raw_labels)
        identity = tuple(sorted(labels.items()))
        if identity in seen:
            raise SourceError(
                f"{where}: series {_show(seen[identity])} and {_show(raw_labels)} both become {_show(labels)}; "
                "keep a label that tells them apart (label_map)"
            )
        seen[identity] = raw_labels
        series_where = f"{where}, series {_show(raw_labels)}"
        pairs = [item.get("value")] if kind == "vector" else (item.get("values") or [])
        for pair in pairs:
            if not isinstance(pair, list) or len(pair) != 2:
                raise SourceError(f"{series_where}: malformed sample {snippet(str(pair), 60)}")
            readings.append(Reading(spec.metric, _value(pair[1], series_where), labels, _ts(pair[0], series_where)))
    return readings


def _map_labels(spec: QuerySpec, raw: dict[str, str]) -> dict[str, str]:
    if spec.label_map is not None:
        labels = {}
        for target, source in spec.label_map.items():
            if source not in raw:
                raise SourceError(
                    f"query {spec.query!r}: result label {source!r} (for {target!r}) is missing in {_show(raw)}"
                )
            labels[target] = raw[source]
    else:
        labels = {k: v for k, v in raw.items() if k not in DROPPED}
    return {**labels, **spec.labels}


def _value(raw: Any, where: str) -> float:
    try:
        value = float(str(raw))  # Prometheus sends sample values as strings ("0.93", "NaN", "+Inf")
    except ValueError:
        raise SourceError(f"{where}: value {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise SourceError(f"{where}: value is {raw}, not a finite number")
    return value


def _ts(raw: Any, where: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(raw), UTC)
    except (TypeError, ValueError, OverflowError):
        raise SourceError(f"{where}: timestamp {raw!r} is not a number of seconds") from None


def _show(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


KIND = SourceKind("prometheus", PrometheusParams, PrometheusCollector, "PromQL instant or range queries")
