"""Parse and validate a pushed batch of samples: bytes in, samples out, or InvalidInput naming
every offending item index and field. Nothing here touches the store, so a rejected batch writes
nothing.

    {"samples": [{"project": "churn", "metric": "accuracy", "labels": {"model": "v7"},
                  "timestamp": "2026-11-26T10:00:00Z" | 1795650000.5, "value": 0.91}, ...]}

A missing timestamp means "now". Parsing and type checks run in pydantic-core (Rust); the loop
below only applies mlmon's own rules, with a cache so a series seen once is checked once
(per process, not per batch: at 5,000 series a batch the name rules alone cost 100+ ms).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, NotRequired

from pydantic import Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from monitor.core.errors import InvalidInput, Issue, TooLarge
from monitor.core.gc_pause import gc_paused
from monitor.core.naming import labels_problem, metric_name_problem
from monitor.core.types import Event, Sample, SeriesKey, labels_of, ms_from_datetime

MAX_BATCH = 10_000
MAX_BODY_BYTES = 32 * 1024 * 1024
FUTURE_LIMIT_MS = 3_600_000
MAX_ISSUES = 100


class SampleIn(TypedDict):
    project: str
    metric: str
    labels: NotRequired[dict[str, str]]
    timestamp: NotRequired[float | datetime]
    value: Annotated[float, Field(allow_inf_nan=False)]


class BatchIn(TypedDict):
    samples: list[SampleIn]


class EventIn(TypedDict):
    project: str
    kind: Annotated[str, Field(min_length=1, max_length=64)]
    subject: Annotated[str, Field(min_length=1, max_length=200)]
    old: NotRequired[str | None]
    new: NotRequired[str | None]
    message: NotRequired[str]
    timestamp: NotRequired[float | datetime]
    labels: NotRequired[dict[str, str]]


class EventsIn(TypedDict):
    events: Annotated[list[EventIn], Field(max_length=1000)]


_BATCH = TypeAdapter(BatchIn)
_ITEM = TypeAdapter(SampleIn)
_EVENTS = TypeAdapter(EventsIn)


def _decode_check(body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        too_large = f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}"
        raise TooLarge([Issue("body", too_large)], "body too large")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            [Issue("body", f"body is not valid UTF-8 (invalid byte at offset {exc.start})", field="body")],
            "malformed body",
        ) from None


_UNION_TAGS = frozenset({"float", "datetime", "str", "int"})


def _field_of(loc: list[Any]) -> str:
    return ".".join(str(p) for p in loc if p not in _UNION_TAGS)


def _message(err: Any) -> str:
    return "field required" if err["type"] == "missing" else str(err["msg"])


def _issues(exc: ValidationError, root: str) -> list[Issue]:
    """Issues of a whole-batch validation error (locations start with `root`, then the index)."""
    issues: list[Issue] = []
    for err in exc.errors()[:MAX_ISSUES]:
        loc = list(err["loc"])
        if err["type"] == "json_invalid":
            issues.append(Issue("body", f"malformed JSON: {err['ctx']['error']}", field="body"))
        elif len(loc) > 1 and loc[0] == root and isinstance(loc[1], int):
            field = _field_of(loc[2:])
            where = f"{root}[{loc[1]}].{field}"
            issues.append(Issue(where, _message(err), index=loc[1], field=field or None))
        else:
            issues.append(Issue(_field_of(loc) or "body", _message(err), field=_field_of(loc) or None))
    return issues


def _item_issue(root: str, index: int, field: str, message: str) -> Issue:
    return Issue(f"{root}[{index}].{field}", message, index=index, field=field)


def _ts_ms(value: float | datetime | None, now_ms: int) -> int:
    if value is None:
        return now_ms
    if isinstance(value, datetime):
        return ms_from_datetime(value)
    return int(round(value * 1000))


def parse_samples(body: bytes, projects: Collection[str], now_ms: int) -> list[Sample]:
    """Validate a pushed batch; raise InvalidInput (422) or TooLarge (413) naming each bad item."""
    _decode_check(body)
    with gc_paused():
        return _check_samples(body, projects, now_ms)


def _check_samples(body: bytes, projects: Collection[str], now_ms: int) -> list[Sample]:
    try:
        items: list[SampleIn | None] = list(_BATCH.validate_json(body)["samples"])
        type_issues: list[Issue] = []
    except ValidationError as exc:
        items, type_issues = _item_by_item(body, exc)
    if len(items) > MAX_BATCH:
        too_many = f"{len(items)} samples in one batch; the limit is {MAX_BATCH}"
        raise TooLarge([Issue("samples", too_many, field="samples")], "batch too large")
    latest = now_ms + FUTURE_LIMIT_MS
    issues: list[Issue] = type_issues
    out: list[Sample] = []
    append = out.append
    series_cache = _SERIES
    for index, item in enumerate(items):
        if item is None:
            continue
        project = item["project"]
        labels = item.get("labels") or {}
        raw_key = (project, item["metric"], tuple(labels.items()))
        key = series_cache.get(raw_key)
        if key is None or project not in projects:
            problem = _series_problem(project, item["metric"], labels, projects)
            if problem:
                issues.append(_item_issue("samples", index, *problem))
                if len(issues) >= MAX_ISSUES:
                    break
                continue
            key = _remember(raw_key, SeriesKey(project, item["metric"], labels_of(labels)))
        stamp = item.get("timestamp")
        ts = int(round(stamp * 1000)) if type(stamp) is float else _ts_ms(stamp, now_ms)
        if ts < 0 or ts > latest:
            why = "before 1970" if ts < 0 else "more than 1h in the future"
            issues.append(_item_issue("samples", index, "timestamp", f"timestamp is {why}"))
            if len(issues) >= MAX_ISSUES:
                break
            continue
        append(Sample(key, ts, item["value"]))
    if issues:
        issues.sort(key=lambda i: -1 if i.index is None else i.index)
        raise InvalidInput(issues[:MAX_ISSUES], f"{len(issues)} invalid sample(s); nothing was stored")
    return out


def _item_by_item(body: bytes, exc: ValidationError) -> tuple[list[SampleIn | None], list[Issue]]:
    """Slow path after a failed batch validation: check each item alone, so that every bad item
    (type errors and mlmon's own rules alike) is reported in one answer."""
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors) or not _is_batch_shape(body):
        raise InvalidInput(_issues(exc, "samples"), "invalid samples") from None
    raw_items = json.loads(body)["samples"]
    items: list[SampleIn | None] = []
    issues: list[Issue] = []
    for index, raw in enumerate(raw_items):
        try:
            items.append(_ITEM.validate_python(raw))
        except ValidationError as item_exc:
            items.append(None)
            for err in item_exc.errors():
                field = _field_of(list(err["loc"])) or "(item)"
                issues.append(Issue(f"samples[{index}].{field}", _message(err), index=index, field=field))
    return items, issues


def _is_batch_shape(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("samples"), list)


RawKey = tuple[str, str, tuple[tuple[str, str], ...]]
"""(project, metric, label pairs in the order sent) of a pushed sample."""

_SERIES: dict[RawKey, SeriesKey] = {}
"""Series that passed the metric-name and label rules, so that a series pushed again and again is
checked once per process, not once per batch. Those rules depend on nothing but the name and the
labels; the project, which a reload can remove, is checked on every sample."""
_SERIES_LIMIT = 100_000


def _remember(raw_key: RawKey, key: SeriesKey) -> SeriesKey:
    if len(_SERIES) >= _SERIES_LIMIT:
        _SERIES.clear()
    _SERIES[raw_key] = key
    return key


_metric_name_problem = lru_cache(maxsize=4096)(metric_name_problem)


def _series_problem(
    project: str, metric: str, labels: dict[str, str], projects: Collection[str]
) -> tuple[str, str] | None:
    if project not in projects:
        return "project", f"unknown project {project!r}; it must be declared in the configuration"
    problem = _metric_name_problem(metric)
    if problem:
        return "metric", problem
    return labels_problem(labels)


def parse_events(body: bytes, projects: Collection[str], now_ms: int) -> list[Event]:
    """Validate pushed events (e.g. a deployment: "model version 7 -> 8")."""
    _decode_check(body)
    try:
        batch = _EVENTS.validate_json(body)
    except ValidationError as exc:
        raise InvalidInput(_issues(exc, "events"), "invalid events") from None
    issues: list[Issue] = []
    out: list[Event] = []
    for index, item in enumerate(batch["events"]):
        if item["project"] not in projects:
            issues.append(_item_issue("events", index, "project", f"unknown project {item['project']!r}"))
            continue
        found = labels_problem(item.get("labels") or {})
        if found:
            issues.append(Issue(f"events[{index}].{found[0]}", found[1], index, found[0]))
            continue
        ts = _ts_ms(item.get("timestamp"), now_ms)
        if ts < 0 or ts > now_ms + FUTURE_LIMIT_MS:
            issues.append(Issue(f"events[{index}].timestamp", "timestamp out of range", index, "timestamp"))
            continue
        out.append(
            Event(
                item["project"],
                ts,
                item["kind"],
                item["subject"],
                item.get("old"),
                item.get("new"),
                item.get("message", ""),
                "api",
                item.get("labels") or {},
            )
        )
    if issues:
        raise InvalidInput(issues, f"{len(issues)} invalid event(s); nothing was stored")
    return out


def jsonable_issues(issues: list[Issue]) -> list[dict[str, Any]]:
    return [
        {
            k: v
            for k, v in {"where": i.where, "index": i.index, "field": i.field, "message": i.message}.items()
            if v is not None
        }
        for i in issues
    ]
