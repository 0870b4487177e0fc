"""Persistence of the alert engine: instances, rule memory, silences, notification groups, outbox."""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from alerts.grouping import GroupState
from alerts.model import AlertInstance, AlertState
from alerts.silences import Silence
from monitor.core.matchers import Matcher
from monitor.store.db import write_tx
from monitor.store.schema import alert_groups, alert_instances, notification_outbox, rule_state, silences

_PROJECTS_IN_MAX = 500
"""`load` filters by project up to this many projects (beyond, it loads the rules' every instance)."""

_INSTANCE_FIELDS = (
    "rule",
    "fingerprint",
    "project",
    "labels",
    "annotations",
    "state",
    "value",
    "nodata",
    "active_at",
    "fired_at",
    "resolved_at",
    "keep_firing_since",
    "nodata_since",
    "last_eval_at",
    "acked_by",
    "acked_at",
    "ack_comment",
)


def _instance(row: Any) -> AlertInstance:
    return AlertInstance(
        rule=row.rule,
        fingerprint=row.fingerprint,
        project=row.project,
        labels=row.labels,
        annotations=row.annotations,
        state=AlertState(row.state),
        value=row.value,
        nodata=row.nodata,
        active_at=row.active_at,
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
        keep_firing_since=row.keep_firing_since,
        nodata_since=row.nodata_since,
        last_eval_at=row.last_eval_at,
        acked_by=row.acked_by,
        acked_at=row.acked_at,
        ack_comment=row.ack_comment,
        id=row.id,
    )


def _values(instance: AlertInstance, now: datetime) -> dict[str, Any]:
    values = {name: getattr(instance, name) for name in _INSTANCE_FIELDS}
    values["state"] = instance.state.value
    values["labels"] = dict(instance.labels)
    values["annotations"] = dict(instance.annotations)
    values["updated_at"] = now
    return values


class AlertStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(
        self, conn: Connection, rules: Iterable[str] | None = None, projects: Collection[str] | None = None
    ) -> dict[tuple[str, str], AlertInstance]:
        """Every stored instance (of the given rules, and projects), keyed by (rule, fingerprint)."""
        query = select(alert_instances)
        if rules is not None:
            query = query.where(alert_instances.c.rule.in_(list(rules)))
        if projects is not None and len(projects) <= _PROJECTS_IN_MAX:
            query = query.where(alert_instances.c.project.in_(list(projects)))
        return {(r.rule, r.fingerprint): _instance(r) for r in conn.execute(query)}

    def save(self, conn: Connection, changed: Sequence[AlertInstance], now: datetime) -> None:
        new = [_values(i, now) for i in changed if i.id is None]
        old = [{**_values(i, now), "_id": i.id} for i in changed if i.id is not None]
        if new:
            conn.execute(insert(alert_instances), new)
        if old:
            conn.execute(update(alert_instances).where(alert_instances.c.id == bindparam("_id")), old)

    def delete_inactive(self, conn: Connection, keys: Iterable[tuple[str, str]]) -> None:
        for rule, fp in keys:
            conn.execute(
                delete(alert_instances).where(alert_instances.c.rule == rule, alert_instances.c.fingerprint == fp)
            )

    def active(self, conn: Connection, resolved_since: datetime) -> list[AlertInstance]:
        """Firing alerts, and alerts resolved since `resolved_since` (their resolution may be owed)."""
        query = select(alert_instances).where(
            or_(
                alert_instances.c.state == AlertState.FIRING.value,
                and_(
                    alert_instances.c.state == AlertState.RESOLVED.value,
                    alert_instances.c.resolved_at >= resolved_since,
                ),
            )
        )
        return [_instance(r) for r in conn.execute(query)]

    def list(
        self,
        states: Sequence[str] | None = None,
        project: str | None = None,
        severity: str | None = None,
        limit: int = 1000,
    ) -> list[AlertInstance]:
        query = select(alert_instances).order_by(alert_instances.c.updated_at.desc()).limit(limit)
        if states:
            query = query.where(alert_instances.c.state.in_(list(states)))
        if project:
            query = query.where(alert_instances.c.project == project)
        with self.engine.connect() as conn:
            found = [_instance(r) for r in conn.execute(query)]
        if severity:
            found = [a for a in found if a.labels.get("severity") == severity]
        return found

    def get(self, alert_id: int) -> AlertInstance | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(alert_instances).where(alert_instances.c.id == alert_id)).first()
        return _instance(row) if row else None

    def ack(self, alert_id: int, by: str, comment: str, now: datetime) -> bool:
        """Acknowledge a firing alert; False when it is not firing."""
        with write_tx(self.engine) as conn:
            result = conn.execute(
                update(alert_instances)
                .where(alert_instances.c.id == alert_id, alert_instances.c.state == AlertState.FIRING.value)
                .values(acked_by=by, acked_at=now, ack_comment=comment, updated_at=now)
            )
        return bool(result.rowcount)

    def counts(self) -> builtins.list[tuple[str | None, str, str, int]]:
        """(project, state, severity, count) of pending and firing alerts."""
        query = select(alert_instances.c.project, alert_instances.c.state, alert_instances.c.labels).where(
            alert_instances.c.state.in_([AlertState.PENDING.value, AlertState.FIRING.value])
        )
        tally: dict[tuple[str | None, str, str], int] = {}
        with self.engine.connect() as conn:
            for project, state, labels in conn.execute(query):
                key = (project, state, (labels or {}).get("severity", ""))
                tally[key] = tally.get(key, 0) + 1
        return [(*k, v) for k, v in sorted(tally.items(), key=lambda kv: tuple(str(x) for x in kv[0]))]

    # --- rule memory (a kind's state across evaluations and restarts) ------------------------------

    def memory(self, conn: Connection, rules: Iterable[str]) -> dict[tuple[str, str], Mapping[str, Any]]:
        query = select(rule_state).where(rule_state.c.rule.in_(list(rules)))
        return {(r.rule, r.key): r.state for r in conn.execute(query)}

    def put_memory(self, conn: Connection, items: Mapping[tuple[str, str], Mapping[str, Any]], now: datetime) -> None:
        for (rule, key), state in items.items():
            where = (rule_state.c.rule == rule) & (rule_state.c.key == key)
            done = conn.execute(update(rule_state).where(where).values(state=dict(state), updated_at=now))
            if not done.rowcount:
                conn.execute(insert(rule_state).values(rule=rule, key=key, state=dict(state), updated_at=now))


# --- silences ---------------------------------------------------------------------------------------


def matchers_to_json(matchers: Sequence[Matcher]) -> list[dict[str, Any]]:
    return [
        {"name": m.name, "value": m.value, "isRegex": m.op.value in ("=~", "!~"), "isEqual": m.op.value in ("=", "=~")}
        for m in matchers
    ]


def matchers_from_json(data: Sequence[Mapping[str, Any]]) -> tuple[Matcher, ...]:
    out = []
    for m in data:
        op = ("=~" if m["isEqual"] else "!~") if m["isRegex"] else ("=" if m["isEqual"] else "!=")
        out.append(Matcher.of(m["name"], op, m["value"]))
    return tuple(out)


def _silence(row: Any) -> Silence:
    return Silence(row.id, matchers_from_json(row.matchers), row.starts_at, row.ends_at, row.created_by, row.comment)


class SilenceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        matchers: Sequence[Matcher],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
        now: datetime,
    ) -> Silence:
        silence_id = str(uuid.uuid4())
        with write_tx(self.engine) as conn:
            conn.execute(
                insert(silences).values(
                    id=silence_id,
                    matchers=matchers_to_json(matchers),
                    starts_at=starts_at,
                    ends_at=ends_at,
                    created_by=created_by,
                    comment=comment,
                    created_at=now,
                    updated_at=now,
                )
            )
        return Silence(silence_id, tuple(matchers), starts_at, ends_at, created_by, comment)

    def all(self, conn: Connection | None = None) -> list[Silence]:
        query = select(silences).order_by(silences.c.created_at.desc())
        if conn is not None:
            return [_silence(r) for r in conn.execute(query)]
        with self.engine.connect() as own:
            return [_silence(r) for r in own.execute(query)]

    def current(self, conn: Connection, now: datetime) -> list[Silence]:
        return [_silence(r) for r in conn.execute(select(silences).where(silences.c.ends_at > now))]

    def get(self, silence_id: str) -> Silence | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(silences).where(silences.c.id == silence_id)).first()
        return _silence(row) if row else None

    def expire(self, silence_id: str, now: datetime) -> bool:
        """Expire (never delete): the end moves to now. False when unknown or already expired."""
        with write_tx(self.engine) as conn:
            result = conn.execute(
                update(silences)
                .where(silences.c.id == silence_id, silences.c.ends_at > now)
                .values(ends_at=now, updated_at=now)
            )
        return bool(result.rowcount)


# --- notification groups ----------------------------------------------------------------------------


def _group(row: Any) -> GroupState:
    return GroupState(
        key=row.group_key,
        route=row.route,
        receiver=row.receiver,
        group_labels=row.group_labels,
        created_at=row.created_at,
        next_flush_at=row.next_flush_at,
        last_flush_at=row.last_flush_at,
        sent_firing=frozenset(row.sent_firing),
        sent_resolved=frozenset(row.sent_resolved),
        last_sent_at=row.last_sent_at,
    )


class GroupStore:
    def load(self, conn: Connection) -> dict[str, GroupState]:
        return {r.group_key: _group(r) for r in conn.execute(select(alert_groups))}

    def insert(self, conn: Connection, group: GroupState) -> None:
        """Create a group; a group another process created meanwhile is left as it is."""
        dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert
        conn.execute(dialect_insert(alert_groups).values(**self._values(group)).on_conflict_do_nothing())

    def replace(self, conn: Connection, old: GroupState, new: GroupState) -> bool:
        """Update if nobody else flushed the group since it was read (optimistic)."""
        result = conn.execute(
            update(alert_groups)
            .where(alert_groups.c.group_key == old.key, alert_groups.c.next_flush_at == old.next_flush_at)
            .values(**self._values(new))
        )
        return bool(result.rowcount)

    def delete(self, conn: Connection, key: str) -> None:
        conn.execute(delete(alert_groups).where(alert_groups.c.group_key == key))

    @staticmethod
    def _values(group: GroupState) -> dict[str, Any]:
        return {
            "group_key": group.key,
            "route": group.route,
            "receiver": group.receiver,
            "group_labels": dict(group.group_labels),
            "created_at": group.created_at,
            "next_flush_at": group.next_flush_at,
            "last_flush_at": group.last_flush_at,
            "sent_firing": sorted(group.sent_firing),
            "sent_resolved": sorted(group.sent_resolved),
            "last_sent_at": group.last_sent_at,
        }


# --- outbox -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    idempotency_key: str
    group_key: str
    receiver: str
    integration: str
    payload: Mapping[str, Any]
    status: str
    reason: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        row.id,
        row.idempotency_key,
        row.group_key,
        row.receiver,
        row.integration,
        row.payload,
        row.status,
        row.reason,
        row.attempts,
        row.next_attempt_at,
        row.created_at,
        row.sent_at,
        row.last_error,
    )


class OutboxStore:
    """A notification is recorded here before it is sent, and retried from here until it is."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def enqueue(
        self,
        conn: Connection,
        *,
        key: str,
        group_key: str,
        receiver: str,
        integration: str,
        payload: Mapping[str, Any],
        reason: str,
        now: datetime,
    ) -> None:
        conn.execute(
            insert(notification_outbox).values(
                idempotency_key=key,
                group_key=group_key,
                receiver=receiver,
                integration=integration,
                target=receiver,
                payload=json.loads(json.dumps(payload)),
                status="pending",
                reason=reason,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )

    def claim_due(self, now: datetime, lease: timedelta, limit: int = 50) -> list[OutboxItem]:
        """Due pending items, each leased to this caller (a crash mid-send frees it when the lease ends)."""
        with self.engine.connect() as conn:
            due = (
                conn.execute(
                    select(notification_outbox.c.id)
                    .where(notification_outbox.c.status == "pending", notification_outbox.c.next_attempt_at <= now)
                    .order_by(notification_outbox.c.next_attempt_at, notification_outbox.c.id)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
        claimed: list[OutboxItem] = []
        for item_id in due:
            with write_tx(self.engine) as conn:
                got = conn.execute(
                    update(notification_outbox)
                    .where(
                        notification_outbox.c.id == item_id,
                        notification_outbox.c.status == "pending",
                        notification_outbox.c.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=now + lease, attempts=notification_outbox.c.attempts + 1)
                )
                if got.rowcount:
                    row = conn.execute(select(notification_outbox).where(notification_outbox.c.id == item_id)).one()
                    claimed.append(_item(row))
        return claimed

    def mark_sent(self, item_id: int, now: datetime) -> None:
        self._set(item_id, status="sent", sent_at=now, last_error=None)

    def retry_at(self, item_id: int, when: datetime, error: str) -> None:
        self._set(item_id, next_attempt_at=when, last_error=error)

    def mark_failed(self, item_id: int, error: str) -> None:
        self._set(item_id, status="failed", last_error=error)

    def _set(self, item_id: int, **values: Any) -> None:
        with write_tx(self.engine) as conn:
            conn.execute(update(notification_outbox).where(notification_outbox.c.id == item_id).values(**values))

    def items(self, status: str | None = None, limit: int = 1000) -> list[OutboxItem]:
        query = select(notification_outbox).order_by(notification_outbox.c.id).limit(limit)
        if status:
            query = query.where(notification_outbox.c.status == status)
        with self.engine.connect() as conn:
            return [_item(r) for r in conn.execute(query)]

    def stats(self) -> tuple[dict[tuple[str, str], int], datetime | None]:
        """Counts by (integration, status), and when the oldest pending item was created."""
        with self.engine.connect() as conn:
            counts = {
                (integration, status): n
                for integration, status, n in conn.execute(
                    select(notification_outbox.c.integration, notification_outbox.c.status, func.count()).group_by(
                        notification_outbox.c.integration, notification_outbox.c.status
                    )
                )
            }
            oldest = conn.execute(
                select(func.min(notification_outbox.c.created_at)).where(notification_outbox.c.status == "pending")
            ).scalar()
        return counts, oldest

    def next_due(self) -> datetime | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.min(notification_outbox.c.next_attempt_at)).where(notification_outbox.c.status == "pending")
            ).scalar()
