"""`http_json`: GET a URL and pick values out of the JSON answer with JSONPath expressions.

    params:
      url: http://eval.internal/churn/latest.json       # ${VAR} works here too: http://${MLMON_LISTEN}/...
      headers: {Authorization: "Bearer ${EVAL_TOKEN}"}   # ${VAR} comes from the environment
      metrics:
        - metric: accuracy
          path: $.eval.accuracy
        - metric: accuracy                               # one reading per matched object
          path: $.models[*]
          value: accuracy
          labels: {model: name}                          # label <- path inside the object
          timestamp: evaluated_at

A path that matches nothing, or a value that is not a finite number, fails the source with the
path named: mlmon never invents a value.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from jsonpath_ng import JSONPath
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse as parse_jsonpath
from pydantic import Field, PrivateAttr, field_validator, model_validator

from collectors.access import HttpAccess
from collectors.base import CollectContext, CollectResult, Params, Reading, SourceError, SourceKind
from monitor.config.types import LabelSet, MetricName
from monitor.core.naming import label_name_problem
from monitor.http import DEFAULT_MAX_RESPONSE_BYTES, request_json, snippet


def _compile(expression: str) -> JSONPath:
    try:
        return parse_jsonpath(expression)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise ValueError(f"invalid JSONPath {expression!r}: {exc}") from exc


class MetricSpec(Params):
    metric: MetricName
    path: str = Field(description="JSONPath of the value, or of objects holding it")
    value: str | None = Field(default=None, description="path of the value inside each matched object")
    labels: LabelSet = Field(default_factory=dict, description="static labels")
    label_paths: dict[str, str] = Field(default_factory=dict, description="label <- path inside each object")
    timestamp: str | None = Field(default=None, description="path of the reading's time (epoch s or ISO 8601)")

    _compiled: dict[str, JSONPath] = PrivateAttr(default_factory=dict)

    @field_validator("path", "value", "timestamp")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        # Checked per field so that an error points at the line of the bad expression.
        if value is not None:
            _compile(value)
        return value

    @field_validator("label_paths")
    @classmethod
    def _label_expressions(cls, value: dict[str, str]) -> dict[str, str]:
        for label, expression in value.items():
            problem = label_name_problem(label)
            if problem:
                raise ValueError(problem)
            try:
                _compile(expression)
            except ValueError as exc:
                raise ValueError(f"label {label!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _paths(self) -> MetricSpec:
        expressions = {"path": self.path, "value": self.value, "timestamp": self.timestamp}
        expressions.update({f"label_paths.{k}": v for k, v in self.label_paths.items()})
        for name, expr in expressions.items():
            if expr is not None:
                self._compiled[name] = _compile(expr)
        overlap = set(self.labels) & set(self.label_paths)
        if overlap:
            raise ValueError(f"labels {sorted(overlap)} are given both as static labels and as label_paths")
        return self

    def compiled(self, name: str) -> JSONPath | None:
        return self._compiled.get(name)


class HttpJsonParams(HttpAccess):
    method: str = "GET"
    metrics: list[MetricSpec] = Field(min_length=1)
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_RESPONSE_BYTES,
        gt=0,
        le=1024**3,
        description="a larger answer fails the run while it is read (default 8 MiB)",
    )

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value.upper() not in ("GET", "POST"):
            raise ValueError("expected GET or POST")
        return value.upper()


class HttpJsonCollector:
    def __init__(self, params: HttpJsonParams) -> None:
        self.params = params

    def collect(self, ctx: CollectContext) -> CollectResult:
        p = self.params
        url = p.resolved_url(ctx.env)
        with p.client(ctx, base=False) as client:
            document = request_json(client, p.method, url, max_bytes=p.max_response_bytes)
        readings: list[Reading] = []
        for spec in p.metrics:
            readings.extend(_readings(spec, document, url))
        return CollectResult(readings=readings)


def _readings(spec: MetricSpec, document: Any, url: str) -> list[Reading]:
    path = spec.compiled("path")
    assert path is not None
    matches = [m.value for m in path.find(document)]
    if not matches:
        raise SourceError(f"JSONPath {spec.path!r} matched nothing in the answer of {url}: {snippet(str(document))}")
    out: list[Reading] = []
    for index, found in enumerate(matches):
        where = f"{spec.path}[{index}]" if len(matches) > 1 else spec.path
        value = _one(spec, "value", found, where) if spec.value else found
        labels = dict(spec.labels)
        for label in spec.label_paths:
            labels[label] = str(_one(spec, f"label_paths.{label}", found, where))
        ts = _timestamp(_one(spec, "timestamp", found, where), where) if spec.timestamp else None
        out.append(Reading(spec.metric, _number(value, where, spec.metric), labels, ts))
    return out


def _one(spec: MetricSpec, name: str, found: Any, where: str) -> Any:
    expr = spec.compiled(name)
    assert expr is not None
    values = [m.value for m in expr.find(found)]
    if not values:
        raise SourceError(f"{name} path {expr} matched nothing inside {where}")
    return values[0]


def _number(value: Any, where: str, metric: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SourceError(
            f"{where}: expected a number for {metric}, got {type(value).__name__} {snippet(str(value), 60)}"
        )
    try:
        number = float(value)
    except ValueError:
        raise SourceError(f"{where}: expected a number for {metric}, got {value!r}") from None
    if not math.isfinite(number):
        raise SourceError(f"{where}: {metric} is {value!r}, not a finite number")
    return number


def _timestamp(value: Any, where: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) / 1000 if value > 1e11 else float(value)
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise SourceError(f"{where}: timestamp {value!r} is neither epoch seconds nor ISO 8601") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise SourceError(f"{where}: timestamp must be a number or a string, got {type(value).__name__}")


KIND = SourceKind("http_json", HttpJsonParams, HttpJsonCollector, "GET a JSON document, pick values by JSONPath")
