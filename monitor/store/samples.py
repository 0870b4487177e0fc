"""Series and samples: idempotent bulk append, range queries aggregated in SQL, latest values."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import weakref
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, bindparam, cast, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from monitor.core.errors import InvalidInput, Issue
from monitor.core.matchers import Selector, matches_all
from monitor.core.types import Sample, SeriesKey, labels_text
from monitor.store.db import is_sqlite, write_tx
from monitor.store.interface import Aggregation, Point, Reduction, SeriesPoints
from monitor.store.schema import samples, series

MAX_POINTS_PER_SERIES = 11_000
_IN_CHUNK = 500
_ARRAY_ROWS = 1_000
"""Up to this many samples, PostgreSQL takes them as arrays in one statement; more go by COPY."""
_KEY_CACHE_SIZE = 1_000_000


def labels_hash(project: str, metric: str, labels: str) -> str:
    return hashlib.blake2b(f"{project}\0{metric}\0{labels}".encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class SeriesRow:
    id: int
    key: SeriesKey
    created_at: datetime


def _key_of(project: str, metric: str, labels: str) -> SeriesKey:
    parsed: dict[str, str] = json.loads(labels)
    return SeriesKey(project, metric, tuple(sorted(parsed.items())))


class SampleStore:
    """Series and their samples."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ids: dict[SeriesKey, int] = {}
        self._pending_key = f"mlmon_new_series_{id(self)}"
        self._keys: dict[tuple[str, str, str], SeriesKey] = {}
        self._lock = threading.Lock()
        self._sqlite = is_sqlite(engine)
        self._on_transaction_end(engine)

    # --- writing ---------------------------------------------------------------------------------

    def append(self, batch: Sequence[Sample], conn: Connection | None = None) -> int:
        """Store `batch` atomically; a re-sent (series, ts) replaces its value. Returns rows written."""
        if not batch:
            return 0
        if conn is None:
            with write_tx(self.engine) as tx:
                return self.append(batch, tx)
        rows = self._rows(conn, batch)
        if self._sqlite:
            conn.exec_driver_sql(
                "INSERT INTO samples (series_id, ts, value) VALUES (?, ?, ?) "
                "ON CONFLICT (series_id, ts) DO UPDATE SET value = excluded.value",
                rows,
            )
        else:
            self._append_postgres(conn, rows)
        return len(rows)

    def _append_postgres(self, conn: Connection, rows: list[tuple[int, int, float]]) -> None:
        if len(rows) <= _ARRAY_ROWS:
            # One statement over three arrays: one round trip, where the COPY below takes four (a
            # source's run stores a handful of samples, and a worker stores hundreds of runs a second).
            ids, stamps, values = (list(column) for column in zip(*rows, strict=True))
            conn.exec_driver_sql(
                "INSERT INTO samples (series_id, ts, value) "
                "SELECT * FROM unnest(%(ids)s::integer[], %(ts)s::bigint[], %(values)s::double precision[]) "
                "ON CONFLICT (series_id, ts) DO UPDATE SET value = excluded.value",
                {"ids": ids, "ts": stamps, "values": values},
            )
            return
        # COPY into a per-connection temp table, then one INSERT .. SELECT: several times faster
        # than executemany, and ON CONFLICT keeps re-sent samples idempotent.
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS mlmon_ingest "
            "(series_id integer, ts bigint, value double precision) ON COMMIT DELETE ROWS"
        )
        cursor = conn.connection.cursor()
        try:
            with cursor.copy("COPY mlmon_ingest (series_id, ts, value) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()
        conn.exec_driver_sql(
            "INSERT INTO samples (series_id, ts, value) SELECT series_id, ts, value FROM mlmon_ingest "
            "ON CONFLICT (series_id, ts) DO UPDATE SET value = excluded.value"
        )
        conn.exec_driver_sql("TRUNCATE mlmon_ingest")

    def _rows(self, conn: Connection, batch: Sequence[Sample]) -> list[tuple[int, int, float]]:
        """(series id, ts, value) rows of `batch`, creating missing series; of several samples of
        one (series, ts) the last wins. Sorted by key, so the index is written in order.

        The per-sample hot path of ingest: one series-id lookup per sample and nothing else that
        hashes a SeriesKey (it hashes in Python, ~0.3 us, so each extra pass costs ~1.5 ms a batch).
        """
        deduped: dict[tuple[int, int], float] = {}
        deferred: list[Sample] = []
        with self._lock:
            cached = self._ids.get
            for sample in batch:
                sid = cached(sample.series)
                if sid is None:
                    deferred.append(sample)
                else:
                    deduped[sid, sample.ts_ms] = sample.value
        if deferred:
            # Samples of new series: every sample of one series lands here, in arrival order, so
            # the last-one-wins rule still holds.
            ids = self.resolve(conn, (s.series for s in deferred))
            for sample in deferred:
                deduped[ids[sample.series], sample.ts_ms] = sample.value
        rows = [(sid, ts, value) for (sid, ts), value in deduped.items()]
        rows.sort()  # the keys are unique, so values are never compared; linear if already in order
        return rows

    def resolve(self, conn: Connection, keys: Iterable[SeriesKey]) -> dict[SeriesKey, int]:
        """Ids of the given series, creating the missing ones (in the order first given)."""
        wanted = dict.fromkeys(keys)
        with self._lock:
            found = {k: self._ids[k] for k in wanted if k in self._ids}
        missing = [k for k in wanted if k not in found]
        if missing:
            found.update(self._create(conn, missing))
        return found

    def _create(self, conn: Connection, keys: list[SeriesKey]) -> dict[SeriesKey, int]:
        now = datetime.now(UTC)
        by_hash: dict[str, SeriesKey] = {}
        rows = []
        for key in keys:
            text_labels = labels_text(key.labels)
            digest = labels_hash(key.project, key.metric, text_labels)
            by_hash[digest] = key
            rows.append(
                {
                    "project": key.project,
                    "metric": key.metric,
                    "labels": text_labels,
                    "labels_hash": digest,
                    "created_at": now,
                }
            )
        insert = (sqlite.insert if self._sqlite else postgresql.insert)(series)
        conn.execute(insert.on_conflict_do_nothing(), rows)
        ids: dict[SeriesKey, int] = {}
        hashes = list(by_hash)
        query = select(series.c.id, series.c.labels_hash).where(
            series.c.labels_hash.in_(bindparam("hashes", expanding=True))
        )
        for start in range(0, len(hashes), _IN_CHUNK):
            for sid, digest in conn.execute(query, {"hashes": hashes[start : start + _IN_CHUNK]}):
                ids[by_hash[digest]] = sid
        # Cached only once the transaction has committed: a rolled-back series row must not stay
        # cached, and another thread must not insert samples naming a row it cannot see yet.
        pending: dict[SeriesKey, int] = conn.info.setdefault(self._pending_key, {})
        pending.update(ids)
        return ids

    def _on_transaction_end(self, engine: Engine) -> None:
        ref = weakref.ref(self)
        key = self._pending_key
        committing = f"{key}_committed"

        def committed(conn: Connection) -> None:
            # SQLAlchemy calls this *before* the COMMIT is sent: publishing the ids here let a
            # second thread name a series row still invisible to it (a foreign-key violation when
            # runs of one project's sources created their shared series at once). They wait for
            # the connection's return to the pool, which comes after the COMMIT.
            pending = conn.info.pop(key, None)
            if pending:
                conn.info.setdefault(committing, {}).update(pending)

        def rolled_back(conn: Connection) -> None:
            conn.info.pop(key, None)

        def checked_in(_dbapi: Any, record: Any) -> None:
            done = record.info.pop(committing, None) if record is not None else None
            store = ref()
            if done and store is not None:
                with store._lock:
                    store._ids.update(done)

        event.listen(engine, "commit", committed)
        event.listen(engine, "rollback", rolled_back)
        event.listen(engine, "checkin", checked_in)

    # --- reading ---------------------------------------------------------------------------------

    def find_series(self, selector: Selector | None = None, project: str | None = None) -> list[SeriesRow]:
        """Series matching a selector (and project), in a stable order."""
        query = _series_query(
            select(series.c.id, series.c.project, series.c.metric, series.c.labels, series.c.created_at),
            selector,
            project,
            sqlite=self._sqlite,
        )
        out: list[SeriesRow] = []
        with self.engine.connect() as conn:
            for sid, proj, metric, labels, created in conn.execute(query).fetchall():
                key = self._key(proj, metric, labels)
                if selector is not None and not _selects(selector, key):
                    continue
                out.append(SeriesRow(sid, key, created))
        return out

    def _matching(self, conn: Connection, selector: Selector, projects: Collection[str] | None = None) -> _Matched:
        """Ids and keys of the series matching `selector` (of `projects`), in find_series order."""
        columns = select(series.c.id, series.c.project, series.c.metric, series.c.labels)
        query = _series_query(columns, selector, sqlite=self._sqlite)
        if projects is not None:
            query = query.where(series.c.project.in_(sorted(projects)))
        out: dict[int, SeriesKey] = {}
        plain = not selector.matchers
        # fetchall: one bulk fetch instead of a DB-API call per row (10,000s of series per cycle)
        rows = conn.execute(query).fetchall()
        for sid, proj, metric, labels in rows:
            key = self._key(proj, metric, labels)
            if plain or _selects(selector, key):
                out[sid] = key
        # Most of a metric's series (every project's, as an alert cycle reads them): the samples
        # query names the metric instead of binding thousands of ids, and skips the few others.
        narrowed = projects is not None or bool(_literal_filters(selector))
        whole = selector.metric if not narrowed and selector.metric and 2 * len(out) >= len(rows) else None
        return _Matched(out, whole)

    def _key(self, project: str, metric: str, labels: str) -> SeriesKey:
        """`_key_of`, remembered: a series row never changes, and parsing its labels' JSON is the
        main cost of reading thousands of series per alert evaluation."""
        cache_key = (project, metric, labels)
        key = self._keys.get(cache_key)
        if key is None:
            key = _key_of(project, metric, labels)
            if len(self._keys) >= _KEY_CACHE_SIZE:
                self._keys.clear()
            self._keys[cache_key] = key
        return key

    def _window_rows(self, conn: Connection, matched: _Matched, start_ms: int, end_ms: int) -> list[tuple[Any, ...]]:
        """(series id, ts, value) of the `matched` series in [start, end], on the DB-API cursor:
        building SQLAlchemy rows would cost more than the query itself (~1.3 us a row). The series
        are named by their metric (rows of other series may come back: callers skip them) or by
        their ids, which PostgreSQL binds as one array and SQLite as one JSON array."""
        dialect = "sqlite" if self._sqlite else "postgresql"
        value: str | list[int]
        if matched.metric is not None:
            how, value = "metric", matched.metric
        else:
            how, value = "ids", list(matched.keys) if not self._sqlite else json.dumps(list(matched.keys))
        sql = _WINDOW_SQL[dialect].format(series=_SERIES_FILTER[dialect, how])
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, {"start": start_ms, "end": end_ms, how: value})
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def latest(self, key: SeriesKey) -> Point | None:
        sid = self._id_of(key)
        if sid is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(samples.c.ts, samples.c.value)
                .where(samples.c.series_id == sid)
                .order_by(samples.c.ts.desc())
                .limit(1)
            ).first()
        return Point(row[0], row[1]) if row else None

    def latest_all(self) -> list[tuple[SeriesKey, Point]]:
        """The newest raw sample of every series that has one."""
        query = text(
            "SELECT s.project, s.metric, s.labels, x.ts, x.value FROM series s "
            "JOIN samples x ON x.series_id = s.id "
            "AND x.ts = (SELECT MAX(ts) FROM samples m WHERE m.series_id = s.id) "
            "ORDER BY s.metric, s.project, s.id"
        )
        with self.engine.connect() as conn:
            return [(_key_of(p, m, lb), Point(ts, v)) for p, m, lb, ts, v in conn.execute(query)]

    def latest_many(
        self, selector: Selector, until_ms: int | None = None, projects: Collection[str] | None = None
    ) -> list[SeriesPoints]:
        """Every series matching `selector` (of `projects`, when given) with its newest raw point at or
        before `until_ms` (none when it has only hourly aggregates left). One index probe per series,
        however long its history."""
        until = until_ms if until_ms is not None else 2**62
        return self._with_one_point("latest", selector, projects, until=until)

    def points(self, key: SeriesKey, start_ms: int, end_ms: int) -> list[Point]:
        """Raw points of exactly one series with start <= ts <= end."""
        sid = self._id_of(key)
        if sid is None:
            return []
        query = (
            select(samples.c.ts, samples.c.value)
            .where(samples.c.series_id == sid, samples.c.ts >= start_ms, samples.c.ts <= end_ms)
            .order_by(samples.c.ts)
        )
        with self.engine.connect() as conn:
            return [Point(ts, value) for ts, value in conn.execute(query)]

    def window(
        self, selector: Selector, start_ms: int, end_ms: int, projects: Collection[str] | None = None
    ) -> list[SeriesPoints]:
        """Raw points of every matching series (of `projects`, when given) with start <= ts <= end."""
        with self.engine.connect() as conn:
            matched = self._matching(conn, selector, projects)
            by_id = matched.keys
            if not by_id:
                return []
            points: dict[int, list[Point]] = {sid: [] for sid in by_id}
            for sid, ts, value in self._window_rows(conn, matched, start_ms, end_ms):
                if sid in points:
                    points[sid].append(Point(ts, value))
        return [SeriesPoints(by_id[sid], pts) for sid, pts in points.items()]

    def window_reduced(
        self,
        selector: Selector,
        start_ms: int,
        end_ms: int,
        reduce: Reduction,
        projects: Collection[str] | None = None,
    ) -> list[SeriesPoints]:
        """`window`, reduced in SQL to one point per series: the newest timestamp in [start, end] and
        the window's `reduce` (its last, average, smallest or largest value); no point for a series
        with none in the window."""
        return self._with_one_point(f"reduce_{reduce}", selector, projects, start=start_ms, end=end_ms)

    def _with_one_point(
        self, which: str, selector: Selector, projects: Collection[str] | None, **params: int
    ) -> list[SeriesPoints]:
        """The series matching `selector` (of `projects`), each with at most one point, read with
        the point in one query (`which` in _ONE_POINT_SQL), in find_series order."""
        dialect = "sqlite" if self._sqlite else "postgresql"
        where, bound = _series_where(dialect, selector, projects)
        sql = _ONE_POINT_SQL[dialect, which].format(where=where)
        with self.engine.connect() as conn:
            cursor = conn.connection.cursor()
            try:
                cursor.execute(sql, {**params, **bound})
                rows = cursor.fetchall()
            finally:
                cursor.close()
        plain = not selector.matchers
        out: list[SeriesPoints] = []
        for _sid, project, metric, labels, ts, value in rows:
            key = self._key(project, metric, labels)
            if plain or _selects(selector, key):
                out.append(SeriesPoints(key, _NO_POINTS if ts is None else [Point(ts, float(value))]))
        return out

    def query_range(
        self, selector: Selector, start_ms: int, end_ms: int, step_ms: int, agg: Aggregation = "avg"
    ) -> list[SeriesPoints]:
        """One point per step bucket [t, t + step) per series, aggregated in SQL.

        Raw samples and hourly aggregates (for ranges past the raw retention) are combined; an
        hourly aggregate counts when its whole hour lies in [start, end], so downsampling changes
        the answer only in resolution.
        """
        if step_ms <= 0:
            raise InvalidInput([Issue("step", "expected a positive step", field="step")])
        if end_ms < start_ms:
            raise InvalidInput([Issue("end", "end must not be before start", field="end")])
        buckets = (end_ms - start_ms) // step_ms + 1
        if buckets > MAX_POINTS_PER_SERIES:
            raise InvalidInput(
                [
                    Issue(
                        "step",
                        f"{buckets} points per series is over the limit of {MAX_POINTS_PER_SERIES}; use a larger step",
                        field="step",
                    )
                ]
            )
        rows = self.find_series(selector)
        if not rows:
            return []
        by_id = {r.id: r.key for r in rows}
        result: dict[int, list[Point]] = {r.id: [] for r in rows}
        sql = text(_range_sql(agg, self.engine.dialect.name)).bindparams(bindparam("ids", expanding=True))
        ids = list(by_id)
        params = {"start": start_ms, "end": end_ms, "step": step_ms}
        with self.engine.connect() as conn:
            for offset in range(0, len(ids), _IN_CHUNK):
                chunk = ids[offset : offset + _IN_CHUNK]
                for sid, bucket, value, *_ in conn.execute(sql, {**params, "ids": chunk}):
                    if value is not None:
                        result[sid].append(Point(start_ms + int(bucket) * step_ms, float(value)))
        return [SeriesPoints(by_id[sid], pts) for sid, pts in result.items()]

    def count_series(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM series")).scalar_one())

    def _id_of(self, key: SeriesKey) -> int | None:
        with self._lock:
            cached = self._ids.get(key)
        if cached is not None:
            return cached
        digest = labels_hash(key.project, key.metric, labels_text(key.labels))
        with self.engine.connect() as conn:
            sid = conn.execute(select(series.c.id).where(series.c.labels_hash == digest)).scalar()
        if sid is not None:
            with self._lock:
                self._ids[key] = sid
        return sid


def _series_query(
    query: Select[Any], selector: Selector | None, project: str | None = None, *, sqlite: bool
) -> Select[Any]:
    if selector is not None and selector.metric:
        query = query.where(series.c.metric == selector.metric)
    if project:
        query = query.where(series.c.project == project)
    for name, values in _literal_filters(selector) if selector is not None else ():
        if name == "project":
            query = query.where(series.c.project.in_(values))
        elif sqlite:
            query = query.where(func.json_extract(series.c.labels, f'$."{name}"').in_(values))
        else:
            query = query.where(cast(series.c.labels, postgresql.JSONB)[name].astext.in_(values))
    return query.order_by(series.c.project, series.c.metric, series.c.id)


def _literal_filters(selector: Selector) -> list[tuple[str, list[str]]]:
    """(label, the values it may take) for each matcher that admits only listed non-empty values:
    conditions SQL can apply to the series rows before the matchers run on what is left (a
    project page's read of a shared bill names a few of its thousands of attributed series)."""
    out: list[tuple[str, list[str]]] = []
    for matcher in selector.matchers:
        values = matcher.literal_values()
        if values is not None and matcher.name != "__name__" and _PLAIN_LABEL.fullmatch(matcher.name):
            out.append((matcher.name, sorted(values)))
    return out


_PLAIN_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True, slots=True)
class _Matched:
    keys: dict[int, SeriesKey]
    """The matching series by id."""
    metric: str | None = None
    """Set when the series are (most of) this metric's: queries may then name it instead of the ids."""


_NO_POINTS: list[Point] = []
"""Shared by every series without a point: nothing appends to it (`window` gives each its own list)."""

# Raw points of many series on the DB-API cursor: dialect -> SQL with named parameters and
# `{series}` for the condition on the series id column (_SERIES_FILTER).
_WINDOW_SQL = {
    "sqlite": (
        "SELECT series_id, ts, value FROM samples WHERE series_id {series} AND ts >= :start AND ts <= :end "
        "ORDER BY series_id, ts"
    ),
    "postgresql": (
        "SELECT series_id, ts, value FROM samples WHERE series_id {series} "
        "AND ts >= %(start)s AND ts <= %(end)s ORDER BY series_id, ts"
    ),
}
_SERIES_FILTER = {
    ("sqlite", "ids"): "IN (SELECT value FROM json_each(:ids))",
    ("postgresql", "ids"): "= ANY(%(ids)s::integer[])",
    ("sqlite", "metric"): "IN (SELECT id FROM series WHERE metric = :metric)",
    ("postgresql", "metric"): "IN (SELECT id FROM series WHERE metric = %(metric)s)",
}

# Series with at most one point each, series and point in one query: (dialect, which) -> SQL with
# named parameters and `{where}`, the condition on the series `s` (_series_where). Every matching
# series comes back, with NULLs when it has no point.
#
# "latest", the newest point at or before :until: the series row drives, and its point is one
# backward probe of the samples' primary key (series_id, ts), however long the history (on SQLite,
# ORDER BY ts DESC LIMIT 1 is that probe, where MAX(ts) in the subquery took twice as long).
_ONE_POINT_SQL = {
    ("sqlite", "latest"): (
        "SELECT s.id, s.project, s.metric, s.labels, x.ts, x.value FROM series s "
        "LEFT JOIN samples x ON x.series_id = s.id AND x.ts = "
        "(SELECT m.ts FROM samples m WHERE m.series_id = s.id AND m.ts <= :until ORDER BY m.ts DESC LIMIT 1) "
        "WHERE {where} ORDER BY s.project, s.metric, s.id"
    ),
    ("postgresql", "latest"): (
        "SELECT s.id, s.project, s.metric, s.labels, x.ts, x.value FROM series s LEFT JOIN LATERAL "
        "(SELECT ts, value FROM samples WHERE series_id = s.id AND ts <= %(until)s ORDER BY ts DESC LIMIT 1) AS x "
        "ON TRUE WHERE {where} ORDER BY s.project, s.metric, s.id"
    ),
}
# "reduce_<agg>": the newest ts in [:start, :end] and the window's aggregate, from index range
# scans of the series' samples (correlated subqueries on SQLite, a lateral aggregate on PostgreSQL:
# each took 0.6-0.8x as long as aggregating the window's samples of all series in a GROUP BY).
_PARAM = {"sqlite": ":{}", "postgresql": "%({})s"}
_REDUCE_SQL = {"avg": "AVG(value)", "min": "MIN(value)", "max": "MAX(value)"}
_IN_WINDOW = "FROM samples WHERE series_id = s.id AND ts >= {start} AND ts <= {end}"
_SERIES_COLUMNS = "SELECT s.id, s.project, s.metric, s.labels"
_SERIES_ORDER = "WHERE {where} ORDER BY s.project, s.metric, s.id"
_window = {dialect: _IN_WINDOW.format(start=f.format("start"), end=f.format("end")) for dialect, f in _PARAM.items()}
for _agg in (*_REDUCE_SQL, "last"):
    _sqlite_value = (
        f"(SELECT value {_window['sqlite']} ORDER BY ts DESC LIMIT 1)"
        if _agg == "last"
        else f"(SELECT {_REDUCE_SQL[_agg]} {_window['sqlite']})"
    )
    _ONE_POINT_SQL["sqlite", f"reduce_{_agg}"] = (
        f"{_SERIES_COLUMNS}, (SELECT MAX(ts) {_window['sqlite']}), {_sqlite_value} FROM series s {_SERIES_ORDER}"
    )
    _pg_value = "(ARRAY_AGG(value ORDER BY ts DESC))[1]" if _agg == "last" else _REDUCE_SQL[_agg]
    _ONE_POINT_SQL["postgresql", f"reduce_{_agg}"] = (
        f"{_SERIES_COLUMNS}, x.ts, x.value FROM series s LEFT JOIN LATERAL "
        f"(SELECT MAX(ts) AS ts, {_pg_value} AS value {_window['postgresql']}) AS x ON TRUE {_SERIES_ORDER}"
    )


def _series_where(
    dialect: str, selector: Selector, projects: Collection[str] | None
) -> tuple[str, dict[str, str | list[str]]]:
    """The SQL condition on series `s` that narrows to `selector`'s metric, its matchers that list
    their values (_literal_filters) and `projects` (every matcher is applied to the rows again),
    and its parameters. Label names are plain identifiers (_PLAIN_LABEL), so they can be inlined."""
    param = _PARAM[dialect]
    parts: list[str] = []
    bound: dict[str, str | list[str]] = {}
    if selector.metric:
        parts.append(f"s.metric = {param.format('metric')}")
        bound["metric"] = selector.metric
    for i, (name, values) in enumerate(_literal_filters(selector)):
        if dialect == "sqlite":
            column = "s.project" if name == "project" else f"json_extract(s.labels, '$.\"{name}\"')"
            parts.append(f"{column} IN (SELECT value FROM json_each(:label_{i}))")
            bound[f"label_{i}"] = json.dumps(values)
        else:
            column = "s.project" if name == "project" else f"(CAST(s.labels AS jsonb) ->> '{name}')"
            parts.append(f"{column} = ANY(%(label_{i})s)")
            bound[f"label_{i}"] = values
    if projects is not None:
        if dialect == "sqlite":
            parts.append("s.project IN (SELECT value FROM json_each(:projects))")
            bound["projects"] = json.dumps(sorted(projects))
        else:
            parts.append("s.project = ANY(%(projects)s)")
            bound["projects"] = sorted(projects)
    return " AND ".join(parts) or "TRUE", bound


def _selects(selector: Selector, key: SeriesKey) -> bool:
    if not selector.matchers:
        return True
    labels = {**dict(key.labels), "project": key.project, "__name__": key.metric}
    return matches_all(selector.matchers, labels)


_AGG_SQL = {
    "avg": "SUM(v_sum) / SUM(v_count)",
    "sum": "SUM(v_sum)",
    "count": "SUM(v_count)",
    "min": "MIN(v_min)",
    "max": "MAX(v_max)",
}
# The value of the newest point in a bucket. SQLite documents that a bare column beside a single
# MAX() comes from the row holding the maximum; PostgreSQL takes the head of an ordered array_agg.
_LAST_SQL = {
    "sqlite": "v_last, MAX(order_ts) AS newest",
    "postgresql": "(ARRAY_AGG(v_last ORDER BY order_ts DESC))[1]",
}


def _range_sql(agg: Aggregation, dialect: str) -> str:
    value = _LAST_SQL[dialect] if agg == "last" else _AGG_SQL[agg]
    return f"""
        SELECT series_id, (ts - CAST(:start AS BIGINT)) / CAST(:step AS BIGINT) AS bucket, {value}
        FROM (
            SELECT series_id, ts, ts AS order_ts, value AS v_sum, 1 AS v_count,
                   value AS v_min, value AS v_max, value AS v_last
            FROM samples
            WHERE series_id IN :ids AND ts >= :start AND ts <= :end
            UNION ALL
            SELECT series_id, ts, last_ts, sum, count, min, max, last
            FROM samples_hourly
            WHERE series_id IN :ids AND ts >= :start AND ts + 3599999 <= :end
        ) AS points
        GROUP BY series_id, bucket
        ORDER BY series_id, bucket
    """
