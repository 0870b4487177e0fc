"""Events: what happened to a project (version changes, config reloads), for context beside series."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine, insert, select

from monitor.core.types import Event
from monitor.store.db import write_tx
from monitor.store.schema import events


class EventStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, batch: Sequence[Event], conn: Connection | None = None) -> int:
        if not batch:
            return 0
        if conn is None:
            with write_tx(self.engine) as tx:
                return self.add(batch, tx)
        conn.execute(
            insert(events),
            [
                {
                    "project": e.project,
                    "ts": e.ts_ms,
                    "kind": e.kind,
                    "subject": e.subject,
                    "old_value": e.old,
                    "new_value": e.new,
                    "message": e.describe(),
                    "source": e.source,
                    "labels": dict(e.labels),
                }
                for e in batch
            ],
        )
        return len(batch)

    def events(
        self,
        project: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[Event]:
        """Events newest first."""
        query = select(events).order_by(events.c.ts.desc(), events.c.id.desc()).limit(limit)
        if project is not None:
            query = query.where(events.c.project == project)
        if since_ms is not None:
            query = query.where(events.c.ts >= since_ms)
        if until_ms is not None:
            query = query.where(events.c.ts <= until_ms)
        if kinds:
            query = query.where(events.c.kind.in_(list(kinds)))
        with self.engine.connect() as conn:
            return [
                Event(
                    project=row.project,
                    ts_ms=row.ts,
                    kind=row.kind,
                    subject=row.subject,
                    old=row.old_value,
                    new=row.new_value,
                    message=row.message,
                    source=row.source,
                    labels=row.labels or {},
                )
                for row in conn.execute(query)
            ]

    def latest_before(self, project: str, ts_ms: int, kinds: Sequence[str] | None = None) -> Event | None:
        """The nearest event of a project at or before `ts_ms`."""
        found = self.events(project=project, until_ms=ts_ms, kinds=kinds, limit=1)
        return found[0] if found else None
