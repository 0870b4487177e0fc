"""Each page's data, gathered from the read models and rendered with its template.

The routes (routes.py) handle HTTP, credentials and errors; this module decides what a page shows
for a principal: only the projects it sees (`Principal.sees`), and forms only where it may act.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast
from urllib.parse import urlencode

from monitor.api.deps import parse_time
from monitor.api.routes.alerts import AlertOut, SilenceOut, list_alerts
from monitor.auth.model import Permission, Principal
from monitor.config.models import ProjectConfig
from monitor.core.errors import InvalidInput, Issue, NotFound
from monitor.core.gc_pause import gc_paused
from monitor.reports.audit_loader import audit_report
from monitor.reports.render_csv import CSV_TABLES, render_csv
from monitor.reports.render_html import render_html
from monitor.reports.render_json import render_json
from monitor.runtime import Runtime
from monitor.stack.fleet_counts import SEVERITIES
from monitor.stack.store import StackStore
from monitor.views.fleet import fleet_header, sparklines
from monitor.views.project_page import project_page
from monitor.views.scorecard import FLAGS, build_scorecards, scorecards_and_reads
from monitor.views.source_health import read_fleet_sources
from monitor.web.listing import PAGE_SIZES, SORTS, OverviewQuery, listing, parse_query
from monitor.web.render import render

ALERT_STATES = ("pending", "firing", "resolved")


def overview(runtime: Runtime, principal: Principal, params: Mapping[str, str]) -> str:
    query = parse_query(params)
    config, now = runtime.config, runtime.clock.now()
    projects = [p for p in config.projects if principal.sees(p.id)]
    # A thousand scorecards live for the whole request: with the cyclic collector on, young
    # collections promote them and a full collection of the heap (~0.1 s) follows every few
    # requests. They make no cycles; reference counting frees them when the page is done.
    with gc_paused():
        return _overview(runtime, principal, query, projects, now)


def _overview(
    runtime: Runtime, principal: Principal, query: OverviewQuery, projects: list[ProjectConfig], now: datetime
) -> str:
    cards, reads = scorecards_and_reads(runtime.store, runtime.config, now, projects)
    result = listing(cards, query)
    by_id = {p.id: p for p in projects}
    return render(
        "overview.html",
        nav="overview",
        principal=principal,
        now=now,
        fleet=fleet_header(runtime.store, cards, now),
        sparks=sparklines(runtime.store, by_id, result.rows, reads, now),
        result=result,
        query=query,
        sorts=SORTS,
        flags=FLAGS,
        page_sizes=PAGE_SIZES,
        severities=SEVERITIES,
    )


def unknown_project(project_id: str) -> NotFound:
    return NotFound(f"unknown project {project_id!r}: no project with this id is configured")


def project(runtime: Runtime, principal: Principal, project_id: str) -> str:
    config, now = runtime.config, runtime.clock.now()
    found = config.project(project_id)
    if found is None or not principal.sees(project_id):
        # a scoped token learns nothing about projects outside its scope
        raise unknown_project(project_id)
    card = build_scorecards(runtime.store, config, now, [found])[0]
    page = project_page(runtime.store, config, found, now)
    active = list_alerts(runtime, principal, state=["pending", "firing"], project=project_id, severity=None, limit=1000)
    health = read_fleet_sources(runtime.store, config, now, StackStore(runtime.store.engine).feeds())
    return render(
        "project.html",
        nav="overview",
        principal=principal,
        now=now,
        card=card,
        page=page,
        alerts=sort_alerts(active),
        sources=health.shown(found, page.spend_refs),
        flags=FLAGS,
        severities=SEVERITIES,
    )


SEVERITY_ORDER = {"critical": 0, "page": 0, "high": 1, "error": 1, "warning": 2, "medium": 2, "low": 3, "info": 4}
STATE_ORDER = {"firing": 0, "pending": 1, "resolved": 2}


def severity_rank(alert: AlertOut) -> int:
    return SEVERITY_ORDER.get(alert.labels.get("severity", "").lower(), 5)


def sort_alerts(found: Sequence[AlertOut]) -> list[AlertOut]:
    """Worst severity first, then firing before pending before resolved, then the oldest first."""

    def key(alert: AlertOut) -> tuple[int, int, float, int]:
        since = alert.fired_at or alert.active_at
        return severity_rank(alert), STATE_ORDER.get(alert.state, 3), since.timestamp() if since else math.inf, alert.id

    return sorted(found, key=key)


def alert_units(runtime: Runtime, shown: Sequence[AlertOut]) -> dict[int, tuple[str, str]]:
    """alert id -> (the metric its rule reads, the project's currency): what the value's unit is."""
    config = runtime.config
    metrics = {r.name: str(r.params.get("metric") or r.kind) for r in config.rules}
    currencies = {p.id: p.spend.currency_code for p in config.projects}
    return {a.id: (metrics.get(a.rule, a.rule), currencies.get(a.project or "", "USD")) for a in shown}


AlertState = Literal["pending", "firing", "resolved"]


@dataclass(frozen=True)
class AlertFilters:
    states: list[AlertState]
    project: str
    severity: str
    text: str
    muted: str
    """"" shows every alert, "hide" leaves out silenced and inhibited ones, "only" shows only those."""

    @classmethod
    def parse(cls, *, states: Sequence[str], project: str, severity: str, text: str, muted: str) -> AlertFilters:
        chosen: list[AlertState] = []
        for state in (s for s in states if s):
            if state not in ALERT_STATES:
                raise InvalidInput(
                    [Issue("state", f"expected {', '.join(ALERT_STATES)}, got {state!r}", field="state")],
                    "invalid state",
                )
            chosen.append(cast(AlertState, state))
        if muted not in ("", "hide", "only"):
            raise InvalidInput(
                [Issue("muted", f"expected hide or only, got {muted!r}", field="muted")], "invalid muted"
            )
        return cls(chosen or ["pending", "firing"], project.strip(), severity.strip(), text.strip()[:200], muted)

    def keep(self, alert: AlertOut) -> bool:
        if self.muted == "hide" and alert.suppressed:
            return False
        if self.muted == "only" and not alert.suppressed:
            return False
        if self.text:
            needle = self.text.lower()
            haystack = " ".join([alert.rule, alert.project or "", *alert.labels.values(), *alert.annotations.values()])
            return needle in haystack.lower()
        return True

    def query(self) -> str:
        pairs: list[tuple[str, str]] = [("state", str(s)) for s in self.states]
        pairs += [(k, v) for k, v in (("project", self.project), ("severity", self.severity), ("q", self.text),
                                      ("muted", self.muted)) if v]  # fmt: skip
        return "?" + urlencode(pairs)


def alerts(
    runtime: Runtime,
    principal: Principal,
    filters: AlertFilters,
    found: Sequence[AlertOut],
    silences: Sequence[SilenceOut],
    notice: str,
) -> str:
    if filters.project and (runtime.config.project(filters.project) is None or not principal.sees(filters.project)):
        raise unknown_project(filters.project)
    shown = sort_alerts([a for a in found if filters.keep(a)])
    now = runtime.clock.now()
    current = [s for s in silences if s.status.get("state") != "expired"]
    projects = [p.id for p in runtime.config.projects if principal.sees(p.id)]
    return render(
        "alerts.html",
        nav="alerts",
        principal=principal,
        now=now,
        filters=filters,
        alerts=shown,
        units=alert_units(runtime, shown),
        severity_rank={a.id: severity_rank(a) for a in shown},
        total=len(found),
        silences=current,
        expired=len(silences) - len(current),
        notice=notice,
        states=ALERT_STATES,
        projects=projects if len(projects) <= 2000 else [],
        can_ack={a.id: a.state == "firing" and _may(principal, Permission.ACK, a.project) for a in shown},
        can_silence={a.id: _may(principal, Permission.SILENCE, a.project) for a in shown},
        may_silence=principal.can(Permission.SILENCE),
        may_expire={s.id: _may(principal, Permission.SILENCE, _silence_project(s)) for s in current},
        back="/alerts" + filters.query(),
        default_matchers=_default_matchers(principal, filters),
    )


def _may(principal: Principal, permission: Permission, project: str | None) -> bool:
    if project is None:
        return principal.can(permission) and not principal.projects
    return principal.can(permission, project)


def _silence_project(silence: SilenceOut) -> str | None:
    for matcher in silence.matchers:
        if matcher.get("name") == "project" and matcher.get("isEqual", True) and not matcher.get("isRegex", False):
            return str(matcher.get("value"))
    return None


def _default_matchers(principal: Principal, filters: AlertFilters) -> str:
    if filters.project:
        return f'project="{filters.project}"'
    if len(principal.projects) == 1:
        return f'project="{next(iter(principal.projects))}"'
    return ""


def _audit_doc(runtime: Runtime, as_of: str | None, since: str | None, projects: list[str] | None) -> dict[str, Any]:
    return audit_report(
        runtime.store,
        runtime.config,
        runtime.clock.now(),
        as_of=parse_time(as_of, "as_of") if as_of else None,
        since=parse_time(since, "since") if since else None,
        projects=projects,
    )


def _link(base: str, as_of: str | None, since: str | None, projects: list[str] | None, **extra: str) -> str:
    pairs = [(k, v) for k, v in (("as_of", as_of), ("since", since)) if v]
    pairs += [("project", p) for p in projects or []]
    pairs += list(extra.items())
    return base + ("?" + urlencode(pairs) if pairs else "")


def audit(runtime: Runtime, principal: Principal, as_of: str | None, since: str | None,
          projects: list[str] | None) -> str:  # fmt: skip
    doc = _audit_doc(runtime, as_of, since, projects)
    return render(
        "audit.html",
        nav="audit",
        principal=principal,
        now=runtime.clock.now(),
        report=doc,
        as_of=as_of or "",
        since=since or "",
        chosen=projects or [],
        print_link=_link("/audit/print", as_of, since, projects),
        json_link=_link("/audit/export", as_of, since, projects, format="json"),
        csv_links={t: _link("/audit/export", as_of, since, projects, format="csv", what=t) for t in CSV_TABLES},
    )


def audit_print(runtime: Runtime, as_of: str | None, since: str | None, projects: list[str] | None) -> str:
    return render_html(_audit_doc(runtime, as_of, since, projects))


def audit_export(
    runtime: Runtime, fmt: str, what: str, as_of: str | None, since: str | None, projects: list[str] | None
) -> tuple[str, str, str]:
    if fmt not in ("json", "csv"):
        raise InvalidInput([Issue("format", f"expected json or csv, got {fmt!r}", field="format")], "invalid format")
    if fmt == "csv" and what not in CSV_TABLES:
        raise InvalidInput(
            [Issue("what", f"expected one of {', '.join(CSV_TABLES)}, got {what!r}", field="what")], "invalid table"
        )
    doc = _audit_doc(runtime, as_of, since, projects)
    stamp = str(doc["as_of"])[:10].replace("-", "")
    if fmt == "csv":
        return render_csv(doc, what), "text/csv; charset=utf-8", f"mlmon-audit-{what}-{stamp}.csv"
    return render_json(doc), "application/json", f"mlmon-audit-{stamp}.json"
