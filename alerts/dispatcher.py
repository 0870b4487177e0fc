"""From alert state to queued notifications: route, group, silence, inhibit, then flush due groups
into the outbox. A notification is written to the outbox in the same transaction that records it
as sent for its group, so it can be neither lost nor repeated by a crash or restart.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from alerts.grouping import GroupState, flush, new_group
from alerts.model import AlertInstance, AlertState
from alerts.payloads import (
    GroupNotice,
    alertmanager_body,
    email_parts,
    slack_body,
    webhook_body,
)
from alerts.routing import ALL_LABELS, Route, compile_routes, display_group_key, group_key, group_labels, routes_for
from alerts.silences import FiringSource, inhibited_by, silenced_by
from alerts.store import AlertStore, GroupStore, OutboxStore, SilenceStore
from monitor.config.alerting import ReceiverConfig
from monitor.config.models import MlmonConfig
from monitor.core.clock import Clock
from monitor.store.db import write_tx
from monitor.store.store import Store

log = logging.getLogger("mlmon.alerts.dispatch")

GROUPED = ("webhook", "slack", "email")


@dataclass(frozen=True)
class Muting:
    silenced_by: list[str]
    inhibited_by: list[str]

    @property
    def muted(self) -> bool:
        return bool(self.silenced_by or self.inhibited_by)


@dataclass
class DispatchReport:
    enqueued: int = 0
    next_flush_at: datetime | None = None
    muted: dict[str, Muting] = field(default_factory=dict)


def channel_routes(config: MlmonConfig) -> dict[str, Route]:
    """Routes by id, plus one per-alert route for each route whose receiver forwards to Alertmanager:
    Alertmanager gets every alert at once and again every resend_delay (it groups by itself)."""
    out: dict[str, Route] = {}
    resend = config.alerting.resend_delay
    for route in compile_routes(config.route):
        out[route.id] = route
        receiver = config.receiver(route.receiver)
        if receiver is not None and receiver.alertmanager is not None:
            am = replace(
                route,
                id=f"{route.id}:alertmanager",
                group_by=(ALL_LABELS,),
                group_wait=timedelta(0),
                group_interval=resend,
                repeat_interval=resend,
            )
            out[am.id] = am
    return out


def muting(alerts: list[AlertInstance], config: MlmonConfig, silences: list[Any], now: datetime) -> dict[str, Muting]:
    kinds = {r.name: r.kind for r in config.rules}
    depends = {r.name: r.sources for r in config.rules}
    firing = [
        FiringSource(
            a.fingerprint, a.labels, a.project, a.labels.get("source") if kinds.get(a.rule) == "source_down" else None
        )
        for a in alerts
        if a.state is AlertState.FIRING
    ]
    out: dict[str, Muting] = {}
    for a in alerts:
        inhibitors = inhibited_by(a.labels, a.project, depends.get(a.rule), firing, config.inhibit_rules, a.fingerprint)
        out[a.fingerprint] = Muting(silenced_by(a.labels, silences, now), inhibitors)
    return out


class Dispatcher:
    def __init__(self, store: Store, clock: Clock, config: Callable[[], MlmonConfig], external_url: str) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.external_url = external_url
        self.alerts = AlertStore(store.engine)
        self.silences = SilenceStore(store.engine)
        self.groups = GroupStore()
        self.outbox = OutboxStore(store.engine)

    def tick(self) -> DispatchReport:
        """Read alerts, silences and groups without locking; then, only if some group is new, due or
        gone, take the write lock for those groups alone (a concurrent flush is detected and skipped)."""
        config = self.config()
        now = self.clock.now()
        routes = channel_routes(config)
        report = DispatchReport()
        with self.store.engine.connect() as conn:
            alerts = self.alerts.active(conn, now - config.alerting.resolved_retention)
            silences = self.silences.current(conn, now)
            groups = self.groups.load(conn)
        mutes = muting(alerts, config, silences, now)
        report.muted = mutes
        members, placed = self._membership(alerts, config, routes)
        gone: list[str] = []
        created: list[GroupState] = []
        due: list[tuple[GroupState, Route]] = []
        for key in set(members) | set(groups):
            group = groups.get(key)
            if key not in placed:
                if group is not None and (group.route not in routes or not group.sent_firing):
                    gone.append(key)
                if group is None or group.route not in routes or not group.sent_firing:
                    continue
            route = placed[key][0] if key in placed else routes[group.route]  # type: ignore[union-attr]
            if group is None:
                fired = [a.fired_at for a in members[key] if a.state is AlertState.FIRING and a.fired_at]
                group = new_group(key, route, placed[key][1], now, min(fired, default=now))
                created.append(group)
            if now < group.next_flush_at:
                report.next_flush_at = _earliest(report.next_flush_at, group.next_flush_at)
                continue
            due.append((group, route))
            report.next_flush_at = _earliest(report.next_flush_at, now + route.group_interval)
        if gone or created or due:
            with write_tx(self.store.engine) as conn:
                for key in gone:
                    self.groups.delete(conn, key)
                for group in created:
                    self.groups.insert(conn, group)
                for group, route in due:
                    report.enqueued += self._flush(conn, config, route, group, members.get(group.key, []), mutes, now)
        return report

    def _membership(
        self, alerts: list[AlertInstance], config: MlmonConfig, routes: Mapping[str, Route]
    ) -> tuple[dict[str, list[AlertInstance]], dict[str, tuple[Route, dict[str, str]]]]:
        """Which group each alert belongs to, per route and channel (pure)."""
        members: dict[str, list[AlertInstance]] = defaultdict(list)
        placed: dict[str, tuple[Route, dict[str, str]]] = {}
        grouped = [r for r in routes.values() if not r.id.endswith(":alertmanager")]
        for alert in alerts:
            for route in routes_for(alert.labels, grouped):
                for channel in self._channels(route, config, routes):
                    key = group_key(channel, alert.labels)
                    members[key].append(alert)
                    placed[key] = (channel, group_labels(channel, alert.labels))
        return members, placed

    @staticmethod
    def _channels(route: Route, config: MlmonConfig, routes: Mapping[str, Route]) -> list[Route]:
        receiver = config.receiver(route.receiver)
        if receiver is None:
            return []
        out = []
        if any(getattr(receiver, name) is not None for name in GROUPED):
            out.append(route)
        if receiver.alertmanager is not None:
            out.append(routes[f"{route.id}:alertmanager"])
        return out

    def _flush(
        self,
        conn: Any,
        config: MlmonConfig,
        route: Route,
        group: GroupState,
        alerts: list[AlertInstance],
        mutes: Mapping[str, Muting],
        now: datetime,
    ) -> int:
        receiver = config.receiver(route.receiver)
        by_fp = {a.fingerprint: a for a in alerts}
        # Alertmanager must keep hearing of every firing alert (acked or muted here too), or it would
        # time the alert out and tell its own receivers it resolved; it applies its own silences.
        forwarding = route.id.endswith(":alertmanager")
        firing = frozenset(
            a.fingerprint
            for a in alerts
            if a.state is AlertState.FIRING and (forwarding or not mutes[a.fingerprint].muted)
        )
        resolved = frozenset(a.fingerprint for a in alerts if a.state is AlertState.RESOLVED)
        acked = frozenset() if forwarding else frozenset(a.fingerprint for a in alerts if a.acked)
        send_resolved = receiver.send_resolved if receiver else True
        result = flush(group, firing, resolved, acked, route, send_resolved, now)
        if not self.groups.replace(conn, group, result.state):
            return 0  # another process flushed this group first
        if result.reason is None or receiver is None:
            if not firing and not result.state.sent_firing and not any(a.state is AlertState.FIRING for a in alerts):
                self.groups.delete(conn, group.key)
            return 0
        chosen = sorted(
            (by_fp[fp] for fp in result.firing | result.resolved if fp in by_fp),
            key=lambda a: (a.state is not AlertState.FIRING, a.fired_at or now, a.fingerprint),
        )
        notice = self._notice(config, route, group, result.reason, chosen, now)
        integrations = (
            ["alertmanager"]
            if route.id.endswith(":alertmanager")
            else [name for name in GROUPED if getattr(receiver, name) is not None]
        )
        count = 0
        for integration in integrations:
            copies = len(receiver.alertmanager.urls) if integration == "alertmanager" and receiver.alertmanager else 1
            for index in range(copies):
                key = hashlib.sha256(f"{group.key}|{integration}|{index}|{now.isoformat()}".encode()).hexdigest()[:32]
                body = self._payload(integration, receiver, replace(notice, idempotency_key=key), config, now, index)
                self.outbox.enqueue(
                    conn,
                    key=key,
                    group_key=group.key,
                    receiver=receiver.name,
                    integration=integration,
                    payload=body,
                    reason=result.reason,
                    now=now,
                )
                count += 1
        if result.state.idle and not firing:
            self.groups.delete(conn, group.key)
        log.info(
            "group %s (%s): %s, %d alert(s) -> %s",
            group.key[:8],
            route.receiver,
            result.reason,
            len(chosen),
            integrations,
        )
        return count

    def _notice(
        self,
        config: MlmonConfig,
        route: Route,
        group: GroupState,
        reason: str,
        alerts: list[AlertInstance],
        now: datetime,
    ) -> GroupNotice:
        project = config.project(group.group_labels.get("project", "")) if group.group_labels.get("project") else None
        owners = [{"name": o.name, "email": o.email, "slack": o.slack} for o in project.owners] if project else []
        return GroupNotice(
            receiver=route.receiver,
            group_key=display_group_key(route, group.group_labels),
            group_labels=group.group_labels,
            reason=reason,
            idempotency_key="",
            alerts=alerts,
            external_url=config.alerting.external_url or self.external_url,
            owners=owners,
            project_name=project.display_name if project else None,
        )

    @staticmethod
    def _payload(
        integration: str,
        receiver: ReceiverConfig,
        notice: GroupNotice,
        config: MlmonConfig,
        now: datetime,
        index: int,
    ) -> dict[str, Any]:
        if integration == "webhook":
            assert receiver.webhook is not None
            return {"body": webhook_body(notice, receiver.webhook.max_alerts)}
        if integration == "slack":
            assert receiver.slack is not None
            return {"body": slack_body(notice, receiver.slack.mention_owners, receiver.slack.channel)}
        if integration == "email":
            assert receiver.email is not None
            to: set[str] = set()
            for entry in receiver.email.to:
                if entry == "owners":
                    to.update(str(o["email"]) for o in notice.owners if o.get("email"))
                else:
                    to.add(entry)
            subject, text, html = email_parts(notice)
            return {
                "to": sorted(to),
                "subject": subject,
                "text": text,
                "html": html,
                "idempotency_key": notice.idempotency_key,
            }
        valid = 4 * max(config.alerting.evaluation_interval, config.alerting.resend_delay)
        return {"url_index": index, "body": alertmanager_body(notice, valid, now)}


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current
