"""Notification bodies, built from structured data (never by templating JSON).

The webhook body is Alertmanager's webhook version 4, so receivers written for Alertmanager
work unchanged; mlmon adds its own fields under `mlmon` (receivers must ignore unknown keys,
as they already do for Alertmanager's newer fields).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.model import AlertInstance, AlertState
from monitor.core.numbers import readable

ZERO_TIME = "0001-01-01T00:00:00Z"


def iso(moment: datetime | None) -> str:
    if moment is None:
        return ZERO_TIME
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class GroupNotice:
    """Everything a notification about one group says."""

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    reason: str
    idempotency_key: str
    alerts: Sequence[AlertInstance]
    external_url: str
    owners: Sequence[Mapping[str, str | None]] = field(default_factory=list)
    project_name: str | None = None

    @property
    def firing(self) -> list[AlertInstance]:
        return [a for a in self.alerts if a.state is AlertState.FIRING]

    @property
    def status(self) -> str:
        return "firing" if self.firing else "resolved"


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = dict(maps[0])
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def alert_url(external_url: str, alert: AlertInstance) -> str:
    return f"{external_url.rstrip('/')}/api/v1/alerts/{alert.id}" if alert.id else external_url


def webhook_body(notice: GroupNotice, max_alerts: int = 0) -> dict[str, Any]:
    alerts = list(notice.alerts)
    truncated = 0
    if max_alerts and len(alerts) > max_alerts:
        truncated = len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    return {
        "receiver": notice.receiver,
        "status": notice.status,
        "alerts": [
            {
                "status": "firing" if a.state is AlertState.FIRING else "resolved",
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": iso(a.fired_at),
                "endsAt": iso(a.resolved_at) if a.state is AlertState.RESOLVED else ZERO_TIME,
                "generatorURL": alert_url(notice.external_url, a),
                "fingerprint": a.fingerprint,
            }
            for a in alerts
        ],
        "groupLabels": dict(notice.group_labels),
        "commonLabels": _common([a.labels for a in alerts]),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": notice.external_url,
        "version": "4",
        "groupKey": notice.group_key,
        "truncatedAlerts": truncated,
        "mlmon": {
            "idempotency_key": notice.idempotency_key,
            "notification_reason": notice.reason,
            "project": notice.group_labels.get("project"),
            "owners": list(notice.owners),
            "alerts": [
                {
                    "id": a.id,
                    "fingerprint": a.fingerprint,
                    "rule": a.rule,
                    "state": a.state.value,
                    "value": a.value,
                    "nodata": a.nodata,
                    "acked_by": a.acked_by,
                }
                for a in alerts
            ],
        },
    }


def _line(alert: AlertInstance) -> str:
    summary = alert.annotations.get("summary") or alert.labels.get("alertname", alert.rule)
    state = "RESOLVED" if alert.state is AlertState.RESOLVED else "FIRING"
    value = "" if alert.value is None else f" (value {readable(alert.value)})"
    nodata = " [no data]" if alert.nodata else ""
    return f"[{state}] {summary}{value}{nodata}"


def title(notice: GroupNotice) -> str:
    labels = notice.group_labels
    what = labels.get("alertname") or ", ".join(sorted({a.rule for a in notice.alerts}))
    project = notice.project_name or labels.get("project", "")
    count = len(notice.firing)
    head = f"[{notice.status.upper()}{':' + str(count) if count else ''}]"
    return f"{head} {what} - {project}".strip(" -")


def slack_body(notice: GroupNotice, mention_owners: bool, channel: str | None) -> dict[str, Any]:
    mentions = ""
    if mention_owners:
        handles = [o["slack"] for o in notice.owners if o.get("slack")]
        mentions = " ".join(f"<@{h}>" if h and h[0] in "UW" else str(h) for h in handles)
    lines = [_line(a) for a in notice.alerts]
    runbooks = sorted({a.annotations["runbook_url"] for a in notice.alerts if a.annotations.get("runbook_url")})
    text = f"*{title(notice)}*" + (f"\n{mentions}" if mentions else "") + "\n" + "\n".join(lines)
    if runbooks:
        text += "\nRunbook: " + ", ".join(runbooks)
    body: dict[str, Any] = {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}],
    }
    if channel:
        body["channel"] = channel
    return body


def email_parts(notice: GroupNotice) -> tuple[str, str, str]:
    """Subject, plain text and HTML."""
    subject = title(notice)
    text_lines = [subject, ""]
    rows = []
    for a in notice.alerts:
        text_lines.append(_line(a))
        text_lines.extend(
            f"    {key}: {a.annotations[key]}" for key in ("description", "runbook_url") if a.annotations.get(key)
        )
        state = "RESOLVED" if a.state is AlertState.RESOLVED else "FIRING"
        summary = a.annotations.get("summary", a.rule)
        labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
        rows.append(
            f"<tr><td>{state}</td><td>{html.escape(summary)}</td>"
            f"<td>{'' if a.value is None else readable(a.value)}</td><td>{html.escape(labels)}</td></tr>"
        )
    text_lines += ["", f"mlmon: {notice.external_url}", f"Notification id: {notice.idempotency_key}"]
    body_html = (
        f"<html><body><h2>{html.escape(subject)}</h2>"
        "<table border='1' cellpadding='4' cellspacing='0'>"
        "<tr><th>State</th><th>Summary</th><th>Value</th><th>Labels</th></tr>"
        + "".join(rows)
        + f"</table><p><a href='{html.escape(notice.external_url)}'>mlmon</a></p></body></html>"
    )
    return subject, "\n".join(text_lines) + "\n", body_html


def alertmanager_body(notice: GroupNotice, valid_for: timedelta, now: datetime) -> list[dict[str, Any]]:
    """`postableAlert`s: firing ones valid until now + valid_for, so Alertmanager resolves them itself if
    mlmon stops re-sending; resolved ones with their real end."""
    out = []
    for a in notice.alerts:
        ends = a.resolved_at if a.state is AlertState.RESOLVED else now + valid_for
        out.append(
            {
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": iso(a.fired_at),
                "endsAt": iso(ends),
                "generatorURL": alert_url(notice.external_url, a),
            }
        )
    return out
