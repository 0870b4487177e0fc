"""Source runs (one row per collection) and each source's current state."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from itertools import starmap
from typing import Any

from sqlalchemy import Connection, Engine, Select, bindparam, delete, insert, null, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from monitor.core.text_cap import cap_text
from monitor.store.columns import UtcDateTime
from monitor.store.db import write_tx
from monitor.store.schema import source_runs, source_state


@dataclass(frozen=True, slots=True)
class RunRecord:
    """The outcome of one collection."""

    project: str
    source: str
    kind: str
    started_at: datetime
    duration_seconds: float
    outcome: str
    error: str | None = None
    samples: int = 0
    events: int = 0
    worker: str | None = None
    """The `mlmon worker` that ran it from the queue; None when it ran in-process."""
    job_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """What the store knows of a source now."""

    project: str
    source: str
    kind: str
    first_run_at: datetime | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_outcome: str | None
    last_error: str | None
    last_duration_seconds: float | None
    consecutive_failures: int
    runs_total: int
    failures_total: int
    run_seconds_total: float
    checkpoint: Mapping[str, Any] | None
    last_worker: str | None = None

    @property
    def up(self) -> bool:
        return self.last_outcome == "ok"


_STATUS_COLUMNS = tuple(f.name for f in fields(SourceStatus))
"""source_state's columns in SourceStatus's field order."""

_ONE_STATUS = select(*(source_state.c[name] for name in _STATUS_COLUMNS)).where(
    source_state.c.project == bindparam("project"), source_state.c.source == bindparam("source")
)
"""Built once: every run reads its source's state, and building and caching the query anew
(a tuple IN through `statuses`) held the GIL a millisecond per run, which a queue worker's other
threads waited for."""


class SourceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._known: dict[tuple[Any, ...], SourceStatus] = {}
        """The last `statuses(checkpoints=False)` by raw database row (see there)."""

    def record(
        self, run: RunRecord, checkpoint: Mapping[str, Any] | None = None, conn: Connection | None = None
    ) -> None:
        """Append the run and update the source's state (and checkpoint, when given)."""
        if conn is None:
            with write_tx(self.engine) as tx:
                self.record(run, checkpoint, tx)
            return
        conn.execute(
            insert(source_runs).values(
                project=run.project,
                source=run.source,
                kind=run.kind,
                started_at=run.started_at,
                duration_seconds=run.duration_seconds,
                outcome=run.outcome,
                error=cap_text(run.error),
                samples=run.samples,
                events=run.events,
                worker=run.worker,
                job_id=run.job_id,
            )
        )
        failed = 0 if run.ok else 1
        values: dict[str, Any] = {
            "kind": run.kind,
            "last_run_at": run.started_at,
            "last_outcome": run.outcome,
            "last_error": cap_text(run.error),
            "last_duration_seconds": run.duration_seconds,
            "last_worker": run.worker,
        }
        if run.ok:
            values["last_success_at"] = run.started_at
        if checkpoint is not None:
            values["checkpoint"] = dict(checkpoint)
        # One upsert instead of a read and a write: the counters grow in SQL, so a run costs one
        # round trip here (a worker stores hundreds of runs a second).
        upsert = (sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert)(source_state).values(
            project=run.project,
            source=run.source,
            first_run_at=run.started_at,
            consecutive_failures=failed,
            runs_total=1,
            failures_total=failed,
            run_seconds_total=run.duration_seconds,
            **values,
        )
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[source_state.c.project, source_state.c.source],
                set_={
                    "consecutive_failures": (source_state.c.consecutive_failures + 1) if failed else 0,
                    "runs_total": source_state.c.runs_total + 1,
                    "failures_total": source_state.c.failures_total + failed,
                    "run_seconds_total": source_state.c.run_seconds_total + run.duration_seconds,
                    **{name: upsert.excluded[name] for name in values},
                },
            )
        )

    def statuses(
        self,
        project: str | None = None,
        *,
        checkpoints: bool = True,
        refs: Collection[tuple[str, str]] | None = None,
    ) -> list[SourceStatus]:
        """Every source's state (of `project`; of the `(project, source)` pairs in `refs`), ordered
        by project and source. Without `checkpoints`, `checkpoint` is None: the alert engine reads
        all sources every cycle and needs none of them, and decoding their JSON was a fifth of the
        read."""
        columns = [
            null().label(name) if name == "checkpoint" and not checkpoints else source_state.c[name]
            for name in _STATUS_COLUMNS
        ]
        query = select(*columns).order_by(source_state.c.project, source_state.c.source)
        if project is not None:
            query = query.where(source_state.c.project == project)
        if refs is not None:
            if not refs:
                return []
            query = query.where(tuple_(source_state.c.project, source_state.c.source).in_(sorted(refs)))
        if not checkpoints and project is None and refs is None:
            return self._all_without_checkpoints(query)
        with self.engine.connect() as conn:
            # positional rows in field order: building by attribute name cost more than the query
            return list(starmap(SourceStatus, conn.execute(query).fetchall()))

    def _all_without_checkpoints(self, query: Select[Any]) -> list[SourceStatus]:
        """Every status, reusing the previous call's object for each row that has not changed. The
        alert engine reads all sources every cycle while few of them have run since; decoding the
        unchanged rows' timestamps was most of the cost. The raw rows (as the driver returns them,
        without SQLAlchemy's type processing) are the memo's keys, so any change is seen."""
        dialect = self.engine.dialect
        # Only the timestamps need converting; the drivers return the other columns as Python values.
        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            if isinstance(column.type, UtcDateTime)
            else None
            for column in query.selected_columns
        ]
        known = self._known
        fresh: dict[tuple[Any, ...], SourceStatus] = {}
        out: list[SourceStatus] = []
        with self.engine.connect() as conn:
            raw_rows = conn.exec_driver_sql(str(query.compile(dialect=dialect))).fetchall()
        for raw_row in raw_rows:
            row = tuple(raw_row)
            status = known.get(row)
            if status is None:
                values: list[Any] = [
                    value if process is None else process(value) for process, value in zip(processors, row, strict=True)
                ]
                status = SourceStatus(*values)
            fresh[row] = status
            out.append(status)
        self._known = fresh
        return out

    def status(self, project: str, source: str) -> SourceStatus | None:
        with self.engine.connect() as conn:
            row = conn.execute(_ONE_STATUS, {"project": project, "source": source}).first()
        return SourceStatus(*row) if row is not None else None

    def runs(self, project: str | None = None, source: str | None = None, limit: int = 100) -> list[RunRecord]:
        query = select(source_runs).order_by(source_runs.c.started_at.desc(), source_runs.c.id.desc())
        if project is not None:
            query = query.where(source_runs.c.project == project)
        if source is not None:
            query = query.where(source_runs.c.source == source)
        with self.engine.connect() as conn:
            return [
                RunRecord(
                    project=r.project,
                    source=r.source,
                    kind=r.kind,
                    started_at=r.started_at,
                    duration_seconds=r.duration_seconds,
                    outcome=r.outcome,
                    error=r.error,
                    samples=r.samples,
                    events=r.events,
                    worker=r.worker,
                    job_id=r.job_id,
                )
                for r in conn.execute(query.limit(limit))
            ]

    def ran_job(self, job_id: int) -> bool:
        """Whether a run of queue job `job_id` is stored (a retried job checks before running)."""
        with self.engine.connect() as conn:
            query = select(source_runs.c.id).where(source_runs.c.job_id == job_id).limit(1)
            return conn.execute(query).first() is not None

    def prune_runs(self, before: datetime, conn: Connection) -> int:
        result = conn.execute(delete(source_runs).where(source_runs.c.started_at < before))
        return result.rowcount or 0
