"""Retention: raw samples older than the raw window are folded into hourly aggregates, then the
hourly aggregates older than their window are deleted. Both steps run in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, text

from monitor.core.types import ms_from_datetime
from monitor.store.db import is_sqlite, write_tx
from monitor.store.sources import SourceStore

HOUR_MS = 3_600_000
_CHUNK_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class RetentionReport:
    downsampled_rows: int
    hourly_rows_written: int
    hourly_rows_deleted: int
    runs_deleted: int


def _fold_sql(sqlite: bool) -> str:
    least, greatest = ("MIN", "MAX") if sqlite else ("LEAST", "GREATEST")
    # `WHERE true` after the sub-select keeps SQLite's parser from reading ON CONFLICT as a join.
    return f"""
        INSERT INTO samples_hourly (series_id, ts, count, sum, min, max, last, last_ts)
        SELECT series_id, hour, COUNT(*), SUM(value), MIN(value), MAX(value), MAX(last_value), MAX(ts)
        FROM (
            SELECT series_id, ts, value, (ts / {HOUR_MS}) * {HOUR_MS} AS hour,
                   FIRST_VALUE(value) OVER (PARTITION BY series_id, ts / {HOUR_MS} ORDER BY ts DESC)
                       AS last_value
            FROM samples WHERE ts >= :lo AND ts < :hi
        ) AS raw
        WHERE true
        GROUP BY series_id, hour
        ON CONFLICT (series_id, ts) DO UPDATE SET
            count = samples_hourly.count + excluded.count,
            sum = samples_hourly.sum + excluded.sum,
            min = {least}(samples_hourly.min, excluded.min),
            max = {greatest}(samples_hourly.max, excluded.max),
            last = CASE WHEN excluded.last_ts >= samples_hourly.last_ts
                        THEN excluded.last ELSE samples_hourly.last END,
            last_ts = {greatest}(samples_hourly.last_ts, excluded.last_ts)
    """


def apply_retention(
    engine: Engine, now: datetime, raw: timedelta, hourly: timedelta, runs: timedelta
) -> RetentionReport:
    """Downsample and prune; each day of raw data is folded in its own transaction."""
    raw_cutoff = (ms_from_datetime(now - raw) // HOUR_MS) * HOUR_MS
    hourly_cutoff = ms_from_datetime(now - hourly)
    fold = text(_fold_sql(is_sqlite(engine)))
    downsampled = written = 0
    with engine.connect() as conn:
        oldest = conn.execute(text("SELECT MIN(ts) FROM samples")).scalar()
    if oldest is not None and oldest < raw_cutoff:
        lo = (int(oldest) // HOUR_MS) * HOUR_MS
        while lo < raw_cutoff:
            hi = min(lo + _CHUNK_MS, raw_cutoff)
            with write_tx(engine) as conn:
                written += conn.execute(fold, {"lo": lo, "hi": hi}).rowcount or 0
                deleted = conn.execute(text("DELETE FROM samples WHERE ts >= :lo AND ts < :hi"), {"lo": lo, "hi": hi})
                downsampled += deleted.rowcount or 0
            lo = hi
    with write_tx(engine) as conn:
        pruned = conn.execute(text("DELETE FROM samples_hourly WHERE ts < :cut"), {"cut": hourly_cutoff})
        runs_deleted = SourceStore(engine).prune_runs(now - runs, conn)
    return RetentionReport(downsampled, written, pruned.rowcount or 0, runs_deleted)
