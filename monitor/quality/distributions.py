"""Pushed distributions: parse a push, profile it, compare it with the active reference, store both.

An evaluation job pushes one batch per dataset (features, or the model's predictions):

    POST /api/v1/quality/distributions
    {"project": "churn", "dataset": "features", "labels": {"model": "churn-classifier"},
     "role": "reference" | "current", "timestamp": "2026-11-26T10:00:00Z",
     "columns": {"age":   {"values": [31, 45, null, ...]},
                 "plan":  {"values": ["basic", "pro", ...]}            # strings: categorical
                 "score": {"histogram": {"edges": [0, 0.1, ...], "counts": [12, 40, ...]}},
                 "region": {"categories": {"eu": 120, "us": 80}}}}

A reference is profiled (binned) once, when it arrives, and stored; the newest reference of each
(project, dataset, labels, column) is the active one. A current batch is compared column by column
with the active reference; the statistics become samples of `distribution_drift{dataset, column,
statistic}` and `distribution_examples{dataset, column}` (so rules, `/metrics` and the API see them
like any series) and one `quality_comparisons` row per column records what was compared with what.
Everything in a push is stored in one transaction, or nothing is.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import Engine, and_, delete, insert, select, update

from monitor.core.errors import InvalidInput, Issue, NotFound, TooLarge
from monitor.core.naming import labels_problem
from monitor.core.types import Sample, SeriesKey, labels_of, labels_text, ms_from_datetime
from monitor.quality.drift import (
    ColumnDrift,
    FloatArray,
    NumericProfile,
    Profile,
    ProfileError,
    categorical_profile,
    compare,
    histogram_profile,
    numeric_profile,
    profile_from_json,
)
from monitor.quality.names import DRIFT_METRIC, EXAMPLES_METRIC
from monitor.quality.tables import quality_comparisons, quality_reference_values, quality_references
from monitor.store.db import write_tx
from monitor.store.samples import labels_hash
from monitor.store.store import Store

MAX_BODY_BYTES = 64 * 1024 * 1024
FUTURE_LIMIT_MS = 3_600_000
RESERVED = frozenset({"dataset", "column", "statistic"})
"""Labels mlmon sets on the drift series; a push may not set them itself."""


# --- the push ------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HistogramIn(_Strict):
    edges: list[float] = Field(min_length=2)
    counts: list[float] = Field(min_length=1)


class ColumnIn(_Strict):
    """One column: raw values, a histogram, or category counts (exactly one)."""

    values: list[Any] | None = None
    histogram: HistogramIn | None = None
    categories: dict[str, float] | None = None
    missing: int = Field(default=0, ge=0, description="missing values not included in the data given")
    kind: Literal["numeric", "categorical"] | None = Field(
        default=None, description="force the kind of raw values (numbers default to numeric)"
    )

    @model_validator(mode="after")
    def _one_form(self) -> ColumnIn:
        given = [n for n in ("values", "histogram", "categories") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of values, histogram or categories (got {', '.join(given) or 'none'})")
        if self.kind is not None and self.values is None:
            raise ValueError("kind applies to raw values only")
        return self


class PushMeta(_Strict):
    """What a push says about itself, apart from its columns (query parameters of an Arrow or
    Parquet body)."""

    project: str
    dataset: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    labels: dict[str, str] = Field(default_factory=dict)
    role: Literal["reference", "current"] = "current"
    timestamp: float | datetime | None = None
    note: str = Field(default="", max_length=1000)
    bins: int | None = Field(default=None, ge=2, le=100, description="bins of a reference (default from config)")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        found = labels_problem(value)
        if found:
            raise ValueError(f"{found[0]}: {found[1]}")
        clash = sorted(RESERVED & set(value))
        if clash:
            raise ValueError(f"labels {clash} are set by mlmon on the drift series; rename them")
        return value


class DistributionPush(PushMeta):
    columns: dict[str, ColumnIn] = Field(min_length=1)

    @field_validator("columns")
    @classmethod
    def _column_names(cls, value: dict[str, ColumnIn]) -> dict[str, ColumnIn]:
        for name in value:
            if not name or len(name) > 128:
                raise ValueError(f"column name {name[:40]!r} must be 1 to 128 characters")
        return value


def parse_push(body: bytes, projects: frozenset[str], max_columns: int) -> DistributionPush:
    """Validate a push body; InvalidInput names each bad field (`columns.age.values`)."""
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge([Issue("body", f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")], "body too large")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None  # orjson refuses NaN: the standard parser reads it, so the field can be named
    try:
        document = json.loads(body) if document is None else document
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput([Issue("body", f"malformed JSON: {exc}", field="body")], "malformed body") from None
    try:
        push = DistributionPush.model_validate(document)
    except ValidationError as exc:
        issues = []
        for err in exc.errors()[:100]:
            where = ".".join(str(p) for p in err["loc"]) or "body"
            issues.append(Issue(where, str(err["msg"]), field=where))
        raise InvalidInput(issues, "invalid distribution push") from None
    check_project_and_size(push, len(push.columns), projects, max_columns)
    return push


def check_project_and_size(push: PushMeta, columns: int, projects: frozenset[str], max_columns: int) -> None:
    if push.project not in projects:
        raise InvalidInput([Issue("project", f"unknown project {push.project!r}", field="project")], "unknown project")
    if columns > max_columns:
        raise TooLarge([Issue("columns", f"{columns} columns; the limit is {max_columns}")], "too many columns")


@dataclass(frozen=True)
class ColumnData:
    """A column turned into a profile (a raw numeric one keeps its sorted values in the profile).

    `first_text` is the first text value of a column read as categories, for the message when its
    reference is numeric."""

    profile: Profile
    first_text: str | None = None


def column_data(name: str, column: ColumnIn, bins: int | None, max_values: int) -> ColumnData:
    """Profile one pushed column; ProfileError (naming the column) when its data is unusable."""
    where = f"columns.{name}"
    try:
        if column.histogram is not None:
            return ColumnData(histogram_profile(column.histogram.edges, column.histogram.counts, column.missing, bins))
        if column.categories is not None:
            return ColumnData(categorical_profile(column.categories, column.missing))
        assert column.values is not None
        if len(column.values) > max_values:
            raise ProfileError(f"{len(column.values)} values; the limit is {max_values} (push a sample or a histogram)")
        numbers, strings, missing = _split(column.values, column.kind == "categorical")
        if column.kind == "categorical" or (strings and not numbers):
            counts: dict[str, int] = {}
            for s in strings:
                counts[s] = counts.get(s, 0) + 1
            first = None if column.kind == "categorical" else (f"values[{_first_string(column.values)}]", strings[0])
            return ColumnData(
                categorical_profile(counts, missing + column.missing),
                None if first is None else f"{first[0]} is {first[1][:40]!r}",
            )
        array = np.asarray(numbers, dtype=np.float64)
        return ColumnData(numeric_profile(array, missing + column.missing, bins))
    except ProfileError as exc:
        raise ProfileError(f"{where}: {exc}") from None


def _first_string(values: Sequence[Any]) -> int:
    return next(i for i, v in enumerate(values) if isinstance(v, str))


def _split(values: Sequence[Any], as_text: bool) -> tuple[list[float], list[str], int]:
    numbers: list[float] = []
    strings: list[str] = []
    missing = 0
    first_number = first_string = -1
    for index, value in enumerate(values):
        kind = type(value)
        if value is None:
            missing += 1
        elif kind is float or kind is int:
            if not math.isfinite(value):
                raise ProfileError(f"values[{index}] is {value!r}; send null for a missing value")
            if as_text:
                strings.append(str(value))
            else:
                numbers.append(value)
                first_number = index if first_number < 0 else first_number
        elif kind is str:
            strings.append(value)
            first_string = index if first_string < 0 else first_string
        else:
            raise ProfileError(f"values[{index}]: expected a number, a string or null, got {kind.__name__}")
    if numbers and strings:
        raise ProfileError(
            f"values mix numbers (values[{first_number}]) and strings (values[{first_string}]); "
            'set "kind": "categorical" to read numbers as categories'
        )
    return numbers, strings, missing


# --- storage ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    id: int
    project: str
    dataset: str
    labels: Mapping[str, str]
    column: str
    kind: str
    n: int
    note: str
    active: bool
    created_at: datetime
    profile: Mapping[str, Any]


@dataclass(frozen=True)
class Comparison:
    id: int
    project: str
    dataset: str
    labels: Mapping[str, str]
    column: str
    ts_ms: int
    reference_id: int
    n: int
    summary: Mapping[str, Any]
    statistics: Mapping[str, float]


class ReferenceCache:
    """Decoded reference profiles by id: a reference is binned once and decoded once per process."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[int, Profile] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, ref_id: int, raw: Mapping[str, Any], load_values: Callable[[], FloatArray | None] | None = None
    ) -> Profile:
        """The decoded profile; on a miss `load_values` reads a numeric reference's sorted values."""
        with self._lock:
            found = self._items.get(ref_id)
            if found is not None:
                self._items.move_to_end(ref_id)
                return found
        values = load_values() if load_values is not None and raw.get("kind") == "numeric" else None
        profile = profile_from_json(raw, values)
        with self._lock:
            self._items[ref_id] = profile
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return profile

    def put(self, ref_id: int, profile: Profile) -> None:
        """A reference just stored, as it was profiled: its first batch needs no database read."""
        with self._lock:
            self._items[ref_id] = profile
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class DistributionStore:
    """The quality_references and quality_comparisons tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def active(self, project: str, dataset: str, labels: Mapping[str, str]) -> dict[str, tuple[int, Mapping[str, Any]]]:
        """column -> (reference id, stored profile) of the active references of one dataset."""
        digest = _labels_digest(project, dataset, labels)
        t = quality_references.c
        query = select(t.column_name, t.id, t.profile).where(
            t.project == project, t.dataset == dataset, t.labels_hash == digest, t.active.is_(True)
        )
        with self.engine.connect() as conn:
            return {row.column_name: (row.id, row.profile) for row in conn.execute(query)}

    def values(self, ref_id: int) -> FloatArray | None:
        """A numeric reference's sorted raw values (None for a histogram or an older reference)."""
        t = quality_reference_values.c
        with self.engine.connect() as conn:
            data = conn.execute(select(t.data).where(t.reference_id == ref_id)).scalar_one_or_none()
        return None if data is None else np.frombuffer(bytes(data), dtype="<f8").astype(np.float64, copy=False)

    def references(
        self, project: str | None = None, dataset: str | None = None, include_inactive: bool = False
    ) -> list[Reference]:
        t = quality_references.c
        query = select(quality_references).order_by(t.project, t.dataset, t.column_name, t.id.desc())
        if project is not None:
            query = query.where(t.project == project)
        if dataset is not None:
            query = query.where(t.dataset == dataset)
        if not include_inactive:
            query = query.where(t.active.is_(True))
        with self.engine.connect() as conn:
            return [_reference(row) for row in conn.execute(query)]

    def reference(self, ref_id: int) -> Reference:
        with self.engine.connect() as conn:
            row = conn.execute(select(quality_references).where(quality_references.c.id == ref_id)).first()
        if row is None:
            raise NotFound(f"no reference {ref_id}")
        return _reference(row)

    def comparisons(
        self,
        project: str,
        dataset: str | None = None,
        column: str | None = None,
        since_ms: int | None = None,
        limit: int = 1000,
    ) -> list[Comparison]:
        """Comparisons newest first."""
        t = quality_comparisons.c
        query = select(quality_comparisons).where(t.project == project).order_by(t.ts.desc(), t.id.desc()).limit(limit)
        if dataset is not None:
            query = query.where(t.dataset == dataset)
        if column is not None:
            query = query.where(t.column_name == column)
        if since_ms is not None:
            query = query.where(t.ts >= since_ms)
        with self.engine.connect() as conn:
            return [
                Comparison(
                    row.id,
                    row.project,
                    row.dataset,
                    json.loads(row.labels),
                    row.column_name,
                    row.ts,
                    row.reference_id,
                    row.n,
                    row.summary,
                    row.statistics,
                )  # fmt: skip
                for row in conn.execute(query)
            ]


def _labels_digest(project: str, dataset: str, labels: Mapping[str, str]) -> str:
    return labels_hash(project, dataset, labels_text(labels_of(labels)))


def _reference(row: Any) -> Reference:
    return Reference(
        row.id, row.project, row.dataset, json.loads(row.labels), row.column_name, row.kind, row.n,
        row.note, row.active, row.created_at, row.profile,
    )  # fmt: skip


# --- ingest -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushResult:
    role: str
    project: str
    dataset: str
    ts_ms: int
    columns: dict[str, dict[str, Any]]
    keys: frozenset[SeriesKey]
    """Series written (for the ingest listeners that trigger rule evaluation)."""


def ingest(
    store: Store,
    cache: ReferenceCache,
    push: DistributionPush,
    now: datetime,
    bins: int,
    max_values: int,
    keep: timedelta | None = None,
) -> PushResult:
    """Profile and store a push (all or nothing); InvalidInput names each unusable column.

    With `keep`, comparisons of the dataset older than that are deleted in the same transaction
    (the service passes `retention.hourly`: the history lives as long as the hourly aggregates).
    """
    _timestamp(push.timestamp, ms_from_datetime(now))  # a bad timestamp is refused before any profiling
    issues: list[Issue] = []
    data: dict[str, ColumnData] = {}
    for name, column in push.columns.items():
        try:
            data[name] = column_data(name, column, bins if push.role == "reference" else None, max_values)
        except ProfileError as exc:
            issues.append(Issue(f"columns.{name}", str(exc).removeprefix(f"columns.{name}: "), field=f"columns.{name}"))
    if issues:
        raise InvalidInput(issues, "unusable columns")
    return ingest_columns(store, cache, push, data, now, keep)


def ingest_columns(
    store: Store,
    cache: ReferenceCache,
    push: PushMeta,
    data: Mapping[str, ColumnData],
    now: datetime,
    keep: timedelta | None = None,
) -> PushResult:
    """Store profiled columns as a reference, or compare them as a current batch and store that."""
    ts_ms = _timestamp(push.timestamp, ms_from_datetime(now))
    if push.role == "reference":
        result, stored = _store_reference(store, push, data, now, ts_ms)
        for ref_id, profile in stored:  # after the commit: never a profile that was rolled back
            cache.put(ref_id, profile)
        return result
    return _compare_and_store(store, cache, push, data, now, ts_ms, keep)


def _timestamp(value: float | datetime | None, now_ms: int) -> int:
    if value is None:
        return now_ms
    ts = ms_from_datetime(value) if isinstance(value, datetime) else int(round(value * 1000))
    if ts < 0 or ts > now_ms + FUTURE_LIMIT_MS:
        raise InvalidInput([Issue("timestamp", "timestamp is out of range (more than 1h ahead?)", field="timestamp")])
    return ts


def _store_reference(
    store: Store, push: PushMeta, data: Mapping[str, ColumnData], now: datetime, ts_ms: int
) -> tuple[PushResult, list[tuple[int, Profile]]]:
    digest = _labels_digest(push.project, push.dataset, push.labels)
    t = quality_references.c
    out: dict[str, dict[str, Any]] = {}
    stored: list[tuple[int, Profile]] = []
    with write_tx(store.engine) as conn:
        conn.execute(
            update(quality_references)
            .where(and_(t.project == push.project, t.dataset == push.dataset, t.labels_hash == digest))
            .where(t.column_name.in_(list(data)), t.active.is_(True))
            .values(active=False)
        )
        for name, column in data.items():
            profile = column.profile
            ref_id = conn.execute(
                insert(quality_references)
                .values(
                    project=push.project,
                    dataset=push.dataset,
                    labels=labels_text(labels_of(push.labels)),
                    labels_hash=digest,
                    column_name=name,
                    kind=profile.kind,
                    n=profile.n,
                    profile=profile.to_json(),
                    note=push.note,
                    active=True,
                    created_at=now,
                )
                .returning(t.id)
            ).scalar_one()
            if isinstance(profile, NumericProfile) and profile.values is not None:
                conn.execute(
                    insert(quality_reference_values).values(
                        reference_id=ref_id,
                        count=int(profile.values.size),
                        data=profile.values.astype("<f8", copy=False).tobytes(),
                    )
                )
            out[name] = {"reference_id": ref_id, **profile.summary()}
            stored.append((ref_id, profile))
    return PushResult("reference", push.project, push.dataset, ts_ms, out, frozenset()), stored


def _compare_and_store(
    store: Store,
    cache: ReferenceCache,
    push: PushMeta,
    data: Mapping[str, ColumnData],
    now: datetime,
    ts_ms: int,
    keep: timedelta | None,
) -> PushResult:
    dist = DistributionStore(store.engine)
    active = dist.active(push.project, push.dataset, push.labels)
    missing = sorted(set(data) - set(active))
    if missing:
        raise InvalidInput(
            [
                Issue(
                    f"columns.{m}",
                    f"no reference for column {m!r} of dataset {push.dataset!r} with these labels; "
                    'push one with "role": "reference" first',
                    field=f"columns.{m}",
                )
                for m in missing
            ],  # fmt: skip
            "no reference",
        )
    results: dict[str, tuple[int, ColumnDrift]] = {}
    issues: list[Issue] = []
    for name, column in data.items():
        ref_id, raw = active[name]
        reference = cache.get(ref_id, raw, lambda ref_id=ref_id: dist.values(ref_id))  # type: ignore[misc]
        if reference.kind == "numeric" and column.profile.kind == "categorical" and column.first_text:
            issues.append(
                Issue(
                    f"columns.{name}",
                    f"the reference is numeric but {column.first_text}; expected a number or null",
                    field=f"columns.{name}",
                )
            )
            continue
        try:
            results[name] = (ref_id, compare(reference, column.profile))
        except ProfileError as exc:
            issues.append(Issue(f"columns.{name}", str(exc), field=f"columns.{name}"))
    if issues:
        raise InvalidInput(issues, "columns do not match their reference")
    samples: list[Sample] = []
    rows: list[dict[str, Any]] = []
    digest = _labels_digest(push.project, push.dataset, push.labels)
    text_labels = labels_text(labels_of(push.labels))
    out: dict[str, dict[str, Any]] = {}
    for name, (ref_id, drift) in results.items():
        base = {**push.labels, "dataset": push.dataset, "column": name}
        stats = drift.statistics()
        for statistic, value in stats.items():
            key = SeriesKey(push.project, DRIFT_METRIC, labels_of({**base, "statistic": statistic}))
            samples.append(Sample(key, ts_ms, float(value)))
        samples.append(Sample(SeriesKey(push.project, EXAMPLES_METRIC, labels_of(base)), ts_ms, float(drift.n)))
        summary = {
            **drift.current.summary(),
            "test": drift.test,
            "reference_n": drift.reference_n,
            "approximate": drift.approximate,
        }
        rows.append(
            {
                "project": push.project,
                "dataset": push.dataset,
                "labels": text_labels,
                "labels_hash": digest,
                "column_name": name,
                "ts": ts_ms,
                "reference_id": ref_id,
                "n": drift.n,
                "summary": summary,
                "statistics": stats,
                "created_at": now,
            }  # fmt: skip
        )
        out[name] = {
            "reference_id": ref_id,
            "n": drift.n,
            "kind": drift.kind,
            "test": drift.test,
            "approximate": drift.approximate,
            "statistics": stats,
        }
    with write_tx(store.engine) as conn:
        store.samples.append(samples, conn)
        conn.execute(insert(quality_comparisons), rows)
        if keep is not None:
            t = quality_comparisons.c
            oldest = ms_from_datetime(now - keep)
            conn.execute(
                delete(quality_comparisons).where(t.project == push.project, t.dataset == push.dataset, t.ts < oldest)
            )
    return PushResult("current", push.project, push.dataset, ts_ms, out, frozenset(s.series for s in samples))
