"""The stack audit report as a document: pure, from loaded history to JSON-ready data.

For a moment `as_of` (now, or a past date) and a period (`since`, default 90 days before), the
report lists per project the installed packages and torch builds, every finding open at `as_of`
or fixed within the period, each with its status then (open, overdue, fixed, ignored), its SLA
due date under `stack.sla`, and the project's SLA compliance; beside them the evidence (when the
inventories and the advisory data were read, from where) and the change log of the period.

A finding's state at `as_of` is replayed from its append-only event log: the stored row holds the
newest values, and every `changed` event after `as_of` is undone (newest first), so the severity,
state, fix and versions are those of that moment. Ignores are intervals between `ignored` and
`unignored` events, valid through their expiry date (UTC): an ignore whose date has passed is
reported expired and the finding open again, even before a sync wrote the `unignored` event.

SLA: a fix available since `fix_available_at` is due `sla[severity]` later (affected findings
only; `unknown` severity has no SLA unless configured). Outcomes: `met` (fixed by the due date),
`missed` (fixed later), `within` (open, not yet due), `overdue` (open past due), `excepted` (a
valid ignore covers it: open and ignored, or fixed late while an ignore covered the whole overdue
time), `none` (no SLA: no fix known, undetermined, or a severity without SLA). Compliance is
(met + within) / (met + missed + within + overdue); ignored and no-SLA findings are counted apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from monitor.auth.changes import Change
from monitor.stack.inventory.torch_build import from_label

DEFAULT_PERIOD = timedelta(days=90)
SCHEMA_VERSION = 1
STATUSES = ("open", "overdue", "fixed", "ignored")
SLA_OUTCOMES = ("met", "missed", "within", "overdue", "excepted", "none")
_REPLAYED = ("vuln_id", "versions", "state", "severity", "fixed_in", "variant")


# --- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    """A project as the configuration describes it (or only as history knows it)."""

    id: str
    name: str = ""
    team: str | None = None
    owners: tuple[Mapping[str, Any], ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    """Configured stack sources: (name, kind)."""
    configured: bool = True


class InstalledPackage(NamedTuple):
    """A package version installed at `as_of` (an open interval of `stack_packages`)."""

    project: str
    source: str
    package: str
    version: str
    since: datetime


@dataclass(frozen=True, slots=True)
class SourceEvidence:
    """When a stack source's inventory in force at `as_of` was read, and how its last run went."""

    project: str
    source: str
    kind: str
    location: str | None = None
    collected_at: datetime | None = None
    """When the inventory in force at `as_of` was read (None: unknown, e.g. runs pruned)."""
    collected_from: str = "inventory"
    """`inventory` (the stored inventory's own time) or `runs` (the last successful run then)."""
    torch_version: str | None = None
    torch_variant: str | None = None
    torch_accelerator: str | None = None
    last_run_at: datetime | None = None
    last_outcome: str | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class FindingEvent:
    at: datetime
    kind: str
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """A row of `stack_findings` (newest values) with all its events, oldest first."""

    id: int
    project: str
    package: str
    vuln_id: str
    ids: tuple[str, ...]
    versions: tuple[str, ...]
    variant: str | None
    state: str
    severity: str
    score: float | None
    summary: str
    fixed_in: str | None
    fix_available_at: datetime | None
    published: datetime | None
    exposed_since: datetime | None
    first_seen_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    advisory_revision: int | None
    events: tuple[FindingEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class AdvisoryEvidence:
    """The advisory database as it stood at `as_of`."""

    revision: int
    refreshed_at: datetime
    feed: str
    source: str
    records: int
    content_revision: int | None
    content_changed_at: datetime | None


@dataclass(frozen=True, slots=True)
class FeedEvidence:
    """A feed's state when the report was made (current reports only)."""

    name: str
    kind: str
    location: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    records: int


@dataclass(frozen=True)
class AuditInputs:
    generated_at: datetime
    as_of: datetime
    since: datetime
    current: bool
    """True when the report is of the present moment (no --as-of): feed states are included."""
    history_starts_at: datetime | None
    sla: Mapping[str, timedelta | None]
    projects: Sequence[ProjectInfo]
    packages: Sequence[InstalledPackage] = ()
    sources: Sequence[SourceEvidence] = ()
    findings: Sequence[FindingRecord] = ()
    uploads: Mapping[tuple[str, str], datetime] = field(default_factory=dict)
    """(package, version) -> upload time: fix dates of fixes that differ from the stored one."""
    advisories: AdvisoryEvidence | None = None
    feeds: Sequence[FeedEvidence] = ()
    changes: Sequence[Change] = ()
    changes_truncated: bool = False


# --- replaying one finding ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IgnoreSpan:
    """An ignore in force from `start` until `end` (an `unignored`/newer `ignored`/`resolved` event)."""

    start: datetime
    end: datetime | None
    reason: str
    expires: date | None
    ended_by: str | None
    """`expired`, `removed from the configuration`, `replaced`, `resolved`; None while in force."""

    @property
    def valid_until(self) -> datetime | None:
        """The end of its validity: its expiry date ends at midnight UTC, or its end event."""
        lapse = datetime.combine(self.expires + timedelta(days=1), time(), UTC) if self.expires else None
        ends = [t for t in (lapse, self.end) if t is not None]
        return min(ends) if ends else None

    def valid_at(self, moment: datetime) -> bool:
        until = self.valid_until
        return self.start <= moment and (until is None or moment < until)


@dataclass(frozen=True)
class FindingAt:
    """A finding's values at a moment."""

    vuln_id: str
    versions: tuple[str, ...]
    state: str
    severity: str
    fixed_in: str | None
    variant: str | None
    severity_changed_since: bool
    ignores: tuple[IgnoreSpan, ...]
    advisory_revision: int | None


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value and value != "None":
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def ignore_spans(
    events: Sequence[FindingEvent], as_of: datetime, resolved_at: datetime | None = None
) -> tuple[IgnoreSpan, ...]:
    """The ignores of a finding up to `as_of`, as intervals (the fix ends the last one)."""
    if not events:
        return ()
    spans: list[IgnoreSpan] = []
    current: dict[str, Any] | None = None

    def close(at: datetime, why: str) -> None:
        nonlocal current
        if current is not None:
            spans.append(IgnoreSpan(current["start"], at, current["reason"], current["expires"], why))
            current = None

    for event in events:
        if event.at > as_of:
            break
        if event.kind == "ignored":
            close(event.at, "replaced")
            current = {
                "start": event.at,
                "reason": str(event.detail.get("reason") or ""),
                "expires": _date(event.detail.get("expires")),
            }
        elif event.kind == "unignored":
            close(event.at, str(event.detail.get("reason") or "removed from the configuration"))
        elif event.kind == "resolved":
            close(event.at, "resolved")
    if resolved_at is not None and resolved_at <= as_of:
        close(resolved_at, "resolved")
    if current is not None:
        spans.append(IgnoreSpan(current["start"], None, current["reason"], current["expires"], None))
    return tuple(spans)


def finding_at(record: FindingRecord, as_of: datetime) -> FindingAt:
    """Undo every change recorded after `as_of`, newest first."""
    if not record.events:  # most findings: nothing but `opened` (and `resolved`), which the row holds
        return FindingAt(
            record.vuln_id, tuple(record.versions), record.state, record.severity, record.fixed_in,
            record.variant, False, (), record.advisory_revision,
        )  # fmt: skip
    values: dict[str, Any] = {
        "vuln_id": record.vuln_id,
        "versions": tuple(record.versions),
        "state": record.state,
        "severity": record.severity,
        "fixed_in": record.fixed_in,
        "variant": record.variant,
    }
    severity_changed = False
    revision = record.advisory_revision
    for event in record.events:
        if event.at > as_of:
            break
        if isinstance(event.detail.get("advisory_revision"), int):
            revision = event.detail["advisory_revision"]
    for event in reversed(record.events):
        if event.at <= as_of:
            break
        if event.kind != "changed":
            continue
        for key in _REPLAYED:
            change = event.detail.get(key)
            if isinstance(change, list | tuple) and len(change) == 2:
                values[key] = tuple(change[0] or ()) if key == "versions" else change[0]
                severity_changed = severity_changed or key == "severity"
    return FindingAt(
        vuln_id=str(values["vuln_id"]),
        versions=tuple(values["versions"]),
        state=str(values["state"]),
        severity=str(values["severity"]),
        fixed_in=values["fixed_in"],
        variant=values["variant"],
        severity_changed_since=severity_changed,
        ignores=ignore_spans(record.events, as_of, record.resolved_at),
        advisory_revision=revision,
    )


def changed_fix(record: FindingRecord, as_of: datetime) -> str | None:
    """The fix version at `as_of` when it differs from the stored one (its date must be recomputed)."""
    fixed_in = finding_at(record, as_of).fixed_in
    return fixed_in if fixed_in is not None and fixed_in != record.fixed_in else None


def _fix_available_at(
    record: FindingRecord, fixed_in: str | None, uploads: Mapping[tuple[str, str], datetime]
) -> datetime | None:
    """As the stack computes it: the later of the advisory's publication and the fix's upload."""
    if fixed_in is None:
        return None
    if fixed_in == record.fixed_in:
        return record.fix_available_at
    moments = [m for m in (record.published, uploads.get((record.package, fixed_in))) if m is not None]
    return max(moments) if moments else None


def _covered(spans: Sequence[IgnoreSpan], start: datetime, end: datetime) -> bool:
    """Whether valid ignores cover [start, end) without a gap."""
    moment = start
    for span in sorted(spans, key=lambda s: s.start):
        if span.start > moment:
            return False
        until = span.valid_until
        if until is None:
            return True
        moment = max(moment, until)
        if moment >= end:
            return True
    return moment >= end


def _ignore_doc(span: IgnoreSpan, as_of: datetime) -> dict[str, Any]:
    """The newest ignore up to `as_of` and whether it is in force, expired or gone."""
    lapse = datetime.combine(span.expires + timedelta(days=1), time(), UTC) if span.expires else None
    if span.end is None and span.valid_at(as_of):
        state = "active"
    elif span.ended_by == "expired" or (lapse is not None and lapse <= (span.end or as_of)):
        state = "expired"
    elif span.ended_by == "resolved":
        state = "ended with the fix"
    else:
        state = "removed"
    return {"reason": span.reason, "expires": _iso(span.expires), "since": _iso(span.start), "state": state}


@lru_cache(maxsize=1 << 16)
def _iso_text(value: datetime | date) -> str:
    return value.isoformat()


def _iso(value: datetime | date | None) -> str | None:
    """ISO text, cached: a report prints the same few moments (sync times, fix dates) many times."""
    return _iso_text(value) if value is not None else None


def _days(seconds: float) -> float:
    return round(seconds / 86400, 2)


def finding_doc(
    record: FindingRecord,
    as_of: datetime,
    sla: Mapping[str, timedelta | None],
    uploads: Mapping[tuple[str, str], datetime],
) -> dict[str, Any]:
    """One finding as it stood at `as_of`, with its SLA outcome."""
    then = finding_at(record, as_of)
    fixed = record.resolved_at is not None and record.resolved_at <= as_of
    fix_at = _fix_available_at(record, then.fixed_in, uploads)
    allowed = sla.get(then.severity, sla.get("unknown"))
    due = fix_at + allowed if fix_at is not None and allowed is not None and then.state == "affected" else None
    latest = then.ignores[-1] if then.ignores else None
    ignored_now = not fixed and latest is not None and latest.end is None and latest.valid_at(as_of)

    if fixed:
        status = "fixed"
    elif ignored_now:
        status = "ignored"
    elif due is not None and as_of > due:
        status = "overdue"
    else:
        status = "open"

    end = record.resolved_at if fixed and record.resolved_at is not None else as_of
    if due is None:
        outcome = "none"
    elif status == "ignored":
        outcome = "excepted"
    elif fixed and end <= due:
        outcome = "met"
    elif fixed:
        outcome = "excepted" if _covered(then.ignores, due, end) else "missed"
    else:
        outcome = "overdue" if status == "overdue" else "within"

    exposed_from = record.exposed_since or record.first_seen_at
    ids = list(record.ids) or [then.vuln_id]
    return {
        "finding": record.id,
        "package": record.package,
        "versions": list(then.versions),
        "variant": then.variant,
        "id": then.vuln_id,
        "aliases": [i for i in ids if i != then.vuln_id],
        "summary": record.summary,
        "severity": then.severity,
        "score": None if then.severity_changed_since else record.score,
        "state": then.state,
        "fixed_in": then.fixed_in,
        "fix_available_at": _iso(fix_at),
        "sla_seconds": int(allowed.total_seconds()) if allowed is not None and due is not None else None,
        "due_at": _iso(due),
        "first_seen_at": _iso(record.first_seen_at),
        "exposed_since": _iso(record.exposed_since),
        "fixed_at": _iso(record.resolved_at) if fixed else None,
        "resolution": record.resolution if fixed else None,
        "days_exposed": _days(max(0.0, (end - exposed_from).total_seconds())),
        "days_overdue": _days((end - due).total_seconds()) if due is not None and end > due else None,
        "status": status,
        "sla": outcome,
        "ignore": _ignore_doc(latest, as_of) if latest is not None else None,
        "advisory_revision": then.advisory_revision,
    }


# --- the report -----------------------------------------------------------------------------------


def compliance(outcomes: Sequence[str]) -> dict[str, Any]:
    """Counts per SLA outcome and the share of findings with an SLA that kept it."""
    counts = dict.fromkeys(SLA_OUTCOMES, 0)
    for outcome in outcomes:
        counts[outcome] += 1
    kept = counts["met"] + counts["within"]
    judged = kept + counts["missed"] + counts["overdue"]
    return {**counts, "judged": judged, "rate": round(kept / judged, 4) if judged else None}


def _torch(
    packages: Sequence[InstalledPackage], sources: Mapping[str, SourceEvidence], as_of: datetime
) -> list[dict[str, Any]]:
    """Each installed torch version with its build, from the inventory in force or its local label."""
    builds: dict[str, dict[str, Any]] = {}
    for pkg in packages:
        if pkg.package != "torch":
            continue
        entry = builds.get(pkg.version)
        if entry is None:
            evidence = sources.get(pkg.source)
            if (
                evidence is not None
                and evidence.torch_version == pkg.version
                and evidence.collected_at is not None
                and evidence.collected_from == "inventory"
                and evidence.collected_at <= as_of
            ):
                variant, accelerator = evidence.torch_variant, evidence.torch_accelerator
            else:
                # no inventory of that moment: the local label is all there is (none: unknown, as the stack says)
                build = from_label(pkg.version)
                variant, accelerator = (build.variant, build.accelerator) if build else ("unknown", None)
            entry = builds[pkg.version] = {
                "version": pkg.version,
                "variant": variant,
                "accelerator": accelerator,
                "sources": [],
            }
        entry["sources"].append(pkg.source)
    return [builds[v] for v in sorted(builds)]


def _packages(packages: Sequence[InstalledPackage]) -> list[dict[str, Any]]:
    """One entry per (package, version) with every source listing it and the earliest time."""
    out: list[dict[str, Any]] = []
    last: dict[str, Any] | None = None
    for pkg in sorted(packages, key=lambda p: (p.package, p.version, p.source)):  # the loader's order: linear
        since = _iso_text(pkg.since)
        if last is not None and last["package"] == pkg.package and last["version"] == pkg.version:
            last["sources"].append(pkg.source)
            last["since"] = min(last["since"], since)  # ISO UTC texts order as the moments do
            continue
        last = {"package": pkg.package, "version": pkg.version, "sources": [pkg.source], "since": since}
        out.append(last)
    return out


def _source_doc(evidence: SourceEvidence) -> dict[str, Any]:
    return {
        "source": evidence.source,
        "kind": evidence.kind,
        "location": evidence.location,
        "inventory_read_at": _iso(evidence.collected_at),
        "inventory_read_from": evidence.collected_from if evidence.collected_at else None,
        "last_run_at": _iso(evidence.last_run_at),
        "last_outcome": evidence.last_outcome,
        "last_error": evidence.last_error,
    }


def _change_doc(change: Change) -> dict[str, Any]:
    return {
        "id": change.id,
        "at": change.at.isoformat(),
        "actor": change.actor,
        "action": change.action,
        "project": change.project,
        "target": change.target,
        "details": dict(change.details),
    }


def _sla_policy(sla: Mapping[str, timedelta | None]) -> dict[str, int | None]:
    return {k: int(v.total_seconds()) if v is not None else None for k, v in sla.items()}


def build_audit(inputs: AuditInputs) -> dict[str, Any]:
    """The report document (plain JSON types) of the given history."""
    as_of = inputs.as_of
    packages: dict[str, list[InstalledPackage]] = {}
    for pkg in inputs.packages:
        packages.setdefault(pkg.project, []).append(pkg)
    sources: dict[str, dict[str, SourceEvidence]] = {}
    for evidence in inputs.sources:
        sources.setdefault(evidence.project, {})[evidence.source] = evidence
    findings: dict[str, list[dict[str, Any]]] = {}
    for record in inputs.findings:
        findings.setdefault(record.project, []).append(finding_doc(record, as_of, inputs.sla, inputs.uploads))

    known = {p.id: p for p in inputs.projects}
    for project in sorted((set(packages) | set(findings)) - set(known)):
        known[project] = ProjectInfo(project, configured=False)

    projects: list[dict[str, Any]] = []
    all_outcomes: list[str] = []
    totals = dict.fromkeys(STATUSES, 0)
    for project_id in sorted(known):
        info = known[project_id]
        docs = sorted(findings.get(project_id, []), key=lambda d: (d["package"], d["id"], d["finding"]))
        status_counts = dict.fromkeys(STATUSES, 0)
        for doc in docs:
            status_counts[doc["status"]] += 1
            totals[doc["status"]] += 1
        outcomes = [d["sla"] for d in docs]
        all_outcomes.extend(outcomes)
        installed = packages.get(project_id, [])
        in_force = sources.get(project_id, {})
        shown = _shown_sources(info, installed, in_force, inputs.current, as_of)
        projects.append(
            {
                "project": project_id,
                "name": info.name or project_id,
                "team": info.team,
                "owners": [dict(o) for o in info.owners],
                "configured": info.configured,
                "torch": _torch(installed, in_force, as_of),
                "packages": _packages(installed),
                "findings": docs,
                "counts": status_counts,
                "compliance": compliance(outcomes),
                "sources": [_source_doc(in_force[s]) if s in in_force else _unknown_source(s, info) for s in shown],
            }
        )

    wanted = set(known)
    changes = [_change_doc(c) for c in inputs.changes if c.project is None or c.project in wanted]
    advisories = inputs.advisories
    return {
        "report": "audit",
        "schema_version": SCHEMA_VERSION,
        "generated_at": inputs.generated_at.isoformat(),
        "as_of": as_of.isoformat(),
        "current": inputs.current,
        "period": {"since": inputs.since.isoformat(), "until": as_of.isoformat()},
        "history_starts_at": _iso(inputs.history_starts_at),
        "sla_policy_seconds": _sla_policy(inputs.sla),
        "summary": {
            "projects": len(projects),
            "findings": sum(totals.values()),
            "counts": totals,
            "compliance": compliance(all_outcomes),
        },
        "evidence": {
            "advisories": None
            if advisories is None
            else {
                "revision": advisories.revision,
                "refreshed_at": advisories.refreshed_at.isoformat(),
                "feed": advisories.feed,
                "source": advisories.source,
                "records": advisories.records,
                "content_revision": advisories.content_revision,
                "content_changed_at": _iso(advisories.content_changed_at),
            },
            "feeds": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    "location": f.location,
                    "last_attempt_at": _iso(f.last_attempt_at),
                    "last_success_at": _iso(f.last_success_at),
                    "last_error": f.last_error,
                    "consecutive_failures": f.consecutive_failures,
                    "records": f.records,
                }
                for f in inputs.feeds
            ],
        },
        "projects": projects,
        "changes": changes,
        "changes_truncated": inputs.changes_truncated,
        "notes": _notes(inputs),
    }


def _shown_sources(
    info: ProjectInfo,
    installed: Sequence[InstalledPackage],
    evidence: Mapping[str, SourceEvidence],
    current: bool,
    as_of: datetime,
) -> list[str]:
    """Sources with packages at `as_of`, an inventory read by then, or (now) configured."""
    names = {p.source for p in installed}
    names.update(s for s, e in evidence.items() if e.collected_at is not None and e.collected_at <= as_of)
    if current:
        names.update(name for name, _ in info.sources)
    return sorted(names)


def _unknown_source(name: str, info: ProjectInfo) -> dict[str, Any]:
    kind = next((k for n, k in info.sources if n == name), None)
    return {
        "source": name,
        "kind": kind,
        "location": None,
        "inventory_read_at": None,
        "inventory_read_from": None,
        "last_run_at": None,
        "last_outcome": None,
        "last_error": None,
    }


def _notes(inputs: AuditInputs) -> list[str]:
    notes = [
        "Owners, team and names are from the configuration in force when the report was made.",
        "Findings fixed before the period's start are left out; findings open at as_of are all listed.",
    ]
    if not inputs.current:
        notes.append(
            "Feed states are shown only in a report of the present moment; the advisory evidence is the "
            "database revision in force at as_of."
        )
        notes.append("IDs and aliases are every name the vulnerability is known by now (aliases are not replayed).")
    rescored = any(
        e.kind == "changed" and e.at > inputs.as_of and "severity" in e.detail
        for f in inputs.findings
        for e in f.events
    )
    if rescored:
        notes.append("A score is left empty where the severity changed after as_of (scores are not kept per change).")
    if inputs.changes_truncated:
        notes.append("The change log of the period is longer than the report holds; narrow the period with since.")
    return notes
