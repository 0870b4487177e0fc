"""When a notification group is flushed, and whether it sends (Alertmanager's rules, pure).

A group flushes first `group_wait` after it appears, then every `group_interval`. A flush sends
when (a) something fires that the last notification did not carry, (b) everything it carried
has resolved, (c) some of it resolved and the receiver wants resolutions, or (d) `repeat_interval`
has passed since the last notification and some firing alert is not acknowledged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from alerts.routing import Route


@dataclass(frozen=True, slots=True)
class GroupState:
    key: str
    route: str
    receiver: str
    group_labels: Mapping[str, str]
    created_at: datetime
    next_flush_at: datetime
    last_flush_at: datetime | None = None
    sent_firing: frozenset[str] = frozenset()
    sent_resolved: frozenset[str] = frozenset()
    last_sent_at: datetime | None = None

    @property
    def idle(self) -> bool:
        return not self.sent_firing


def new_group(
    key: str, route: Route, group_labels: Mapping[str, str], now: datetime, since: datetime | None = None
) -> GroupState:
    """A group whose first flush is `group_wait` after its first alert fired (`since`), so a
    dispatcher that was down or slow does not add its own delay."""
    return GroupState(key, route.id, route.receiver, dict(group_labels), now, (since or now) + route.group_wait)


@dataclass(frozen=True, slots=True)
class Flush:
    reason: str | None
    """new_alert | resolved | repeat, or None when nothing is sent."""
    firing: frozenset[str]
    resolved: frozenset[str]
    state: GroupState


def flush(
    group: GroupState,
    firing: frozenset[str],
    resolved: frozenset[str],
    acked: frozenset[str],
    route: Route,
    send_resolved: bool,
    now: datetime,
) -> Flush:
    """Decide a due flush. `resolved` are resolved alerts of the group; only those the group had
    announced as firing are ever reported resolved (one that resolves within group_wait never is)."""
    announced_resolved = resolved & group.sent_firing
    reason: str | None = None
    if firing - group.sent_firing:
        reason = "new_alert"
    elif group.sent_firing and not firing and group.sent_firing <= resolved:
        reason = "resolved" if send_resolved else None
    elif send_resolved and announced_resolved - group.sent_resolved:
        reason = "resolved"
    elif (
        firing
        and group.last_sent_at is not None
        and now - group.last_sent_at >= route.repeat_interval
        and not firing <= acked
    ):
        reason = "repeat"
    state = replace(group, last_flush_at=now, next_flush_at=now + route.group_interval)
    all_resolved = bool(group.sent_firing) and not firing and group.sent_firing <= resolved
    if reason is not None:
        state = replace(state, sent_firing=firing, sent_resolved=announced_resolved, last_sent_at=now)
    elif all_resolved:
        state = replace(state, sent_firing=frozenset(), sent_resolved=frozenset())
    return Flush(reason, firing, announced_resolved if reason else frozenset(), state)
