"""Stored API-managed project settings (see monitor.config.overrides)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update

from monitor.config.overrides import Override
from monitor.store.audit_tables import project_overrides
from monitor.store.db import write_tx


class OverrideStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> list[Override]:
        query = select(project_overrides).order_by(project_overrides.c.id)
        with self.engine.connect() as conn:
            return [
                Override(r.project, r.kind, r.name, dict(r.body), r.created_by, r.created_at)
                for r in conn.execute(query)
            ]

    def put(self, override: Override, now: datetime) -> None:
        key = (
            (project_overrides.c.project == override.project)
            & (project_overrides.c.kind == override.kind)
            & (project_overrides.c.name == override.name)
        )
        values: dict[str, Any] = {"body": override.body, "created_by": override.created_by, "created_at": now}
        with write_tx(self.engine) as conn:
            if not conn.execute(update(project_overrides).where(key).values(**values)).rowcount:
                conn.execute(
                    insert(project_overrides).values(
                        project=override.project, kind=override.kind, name=override.name, **values
                    )
                )

    def remove(self, project: str, kind: str, name: str) -> bool:
        key = (project_overrides.c.project == project) & (project_overrides.c.kind == kind)
        with write_tx(self.engine) as conn:
            done = conn.execute(delete(project_overrides).where(key & (project_overrides.c.name == name)))
        return bool(done.rowcount)

    def version(self) -> tuple[int, int, str]:
        """Changes whenever an override is added, replaced or removed (for other processes to notice)."""
        query = select(
            func.count(), func.coalesce(func.max(project_overrides.c.id), 0), func.max(project_overrides.c.created_at)
        )
        with self.engine.connect() as conn:
            count, top, newest = conn.execute(query).one()
        return int(count), int(top), str(newest)
