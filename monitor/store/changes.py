"""The change log: who changed what, when. Append-only (the database refuses updates and deletes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from monitor.store.audit_tables import change_log
from monitor.store.db import write_tx

SECRET_KEYS = ("password", "secret", "token", "url_env", "webhook_url", "authorization")


@dataclass(frozen=True, slots=True)
class Change:
    at: datetime
    actor: str
    action: str
    project: str | None = None
    target: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


def redact(value: Any) -> Any:
    """Details never carry a secret, even if a caller passes one."""
    if isinstance(value, Mapping):
        return {k: ("<redacted>" if any(s in k.lower() for s in SECRET_KEYS) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class ChangeLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, change: Change, conn: Connection | None = None) -> None:
        if conn is None:
            with write_tx(self.engine) as tx:
                self.record(change, tx)
            return
        conn.execute(
            insert(change_log).values(
                at=change.at,
                actor=change.actor,
                action=change.action,
                project=change.project,
                target=change.target,
                details=redact(dict(change.details)),
            )
        )

    def entries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        projects: Sequence[str] | None = None,
        actions: Sequence[str] | None = None,
        limit: int = 10_000,
    ) -> list[Change]:
        """Oldest first. With `projects`, project-less entries (e.g. token changes) are left out."""
        query = select(change_log).order_by(change_log.c.at, change_log.c.id).limit(limit)
        if since is not None:
            query = query.where(change_log.c.at >= since)
        if until is not None:
            query = query.where(change_log.c.at <= until)
        if projects is not None:
            query = query.where(change_log.c.project.in_(list(projects)))
        if actions:
            query = query.where(change_log.c.action.in_(list(actions)))
        with self.engine.connect() as conn:
            return [Change(r.at, r.actor, r.action, r.project, r.target, r.details, r.id) for r in conn.execute(query)]
