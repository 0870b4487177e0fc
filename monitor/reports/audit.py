"""The stack audit report as a document: pure, from loaded history to JSON-ready data.

For a moment `as_of` (now, or a past date) and a period (`since`, default 90 days before), the
report lists per project the installed packages and torch builds, every finding open at `as_of`
or fixed within the period, each with its status then (`finding_status.py`, replayed by
`replay.py`), its SLA due date under `stack.sla`, and the project's SLA compliance; beside them
the evidence (when the inventories and the advisory data were read, from where) and the change
log of the period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from monitor.reports.audit_inputs import AuditInputs, ProjectInfo
from monitor.reports.finding_status import STATUSES, VulnerabilityPart, compliance, finding_doc, iso, iso_text
from monitor.reports.replay import finding_at
from monitor.stack.evidence import FindingRecord, InstalledPackage, SourceEvidence
from monitor.stack.inventory.torch_build import from_label
from monitor.store.changes import Change

SCHEMA_VERSION = 1


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
        since = iso_text(pkg.since)
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
        "inventory_read_at": iso(evidence.collected_at),
        "inventory_read_from": evidence.collected_from if evidence.collected_at else None,
        "last_run_at": iso(evidence.last_run_at),
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
    shared: dict[tuple[Any, ...], VulnerabilityPart] = {}
    for record in inputs.findings:
        findings.setdefault(record.project, []).append(
            finding_doc(record, as_of, inputs.sla, inputs.uploads, shared, inputs.advisories_then)
        )

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
        read = [e.collected_at for e in in_force.values() if e.collected_at is not None and e.collected_at <= as_of]
        scanned = bool(read or installed or docs)
        projects.append(
            {
                "project": project_id,
                "name": info.name or project_id,
                "team": info.team,
                "owners": [dict(o) for o in info.owners],
                "configured": info.configured,
                "scanned": scanned,
                "first_read_at": iso(min(read)) if read else None,
                "torch": _torch(installed, in_force, as_of),
                "packages": _packages(installed),
                "findings": docs,
                "counts": status_counts,
                # never scanned: no findings because nobody looked; its compliance judges nothing
                # (rate None), and the renderers say "not scanned" instead of "0 open"
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
        "history_starts_at": iso(inputs.history_starts_at),
        "sla_policy_seconds": _sla_policy(inputs.sla),
        "summary": {
            "projects": len(projects),
            "not_scanned": [p["project"] for p in projects if not p["scanned"]],
            "findings": sum(totals.values()),
            "counts": totals,
            "compliance": compliance(all_outcomes),
        },
        "evidence": {
            "advisory_feed_state": feed_state(inputs),
            "advisories": None
            if advisories is None
            else {
                "revision": advisories.revision,
                "refreshed_at": advisories.refreshed_at.isoformat(),
                "feed": advisories.feed,
                "source": advisories.source,
                "records": advisories.records,
                "content_revision": advisories.content_revision,
                "content_changed_at": iso(advisories.content_changed_at),
            },
            "feeds": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    "location": f.location,
                    "last_attempt_at": iso(f.last_attempt_at),
                    "last_success_at": iso(f.last_success_at),
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


def feed_state(inputs: AuditInputs) -> str:
    """The advisory feed's state at the report's date, in words: up only after a successful fetch."""
    adv = inputs.advisories
    if not inputs.current:
        if adv is None:
            return f"never fetched by {inputs.as_of.isoformat()}"
        return f"revision {adv.revision} in force, imported {adv.refreshed_at.isoformat()} from {adv.source}"
    feed = next((f for f in inputs.feeds if f.name == "advisories"), None)
    if feed is None or feed.last_attempt_at is None:
        return "never fetched"
    if feed.last_success_at is None:
        failing = f"never fetched successfully; failing ({feed.consecutive_failures} attempts)"
        return f"{failing}: {feed.last_error}" if feed.last_error else failing
    if feed.consecutive_failures:
        since = feed.last_success_at.isoformat()
        failing = f"failing since the success of {since} ({feed.consecutive_failures} attempts)"
        return f"{failing}: {feed.last_error}" if feed.last_error else failing
    return f"up: last fetched {feed.last_success_at.isoformat()} from {feed.location}"


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
        "Owners, team and names are from the configuration in force when the report was made."
        if inputs.current
        else "Owners, team and names are those in force at as_of, replayed from the configuration reloads in the "
        "change log (a restart with another configuration file is not in it).",
        "Findings fixed before the period's start are left out; findings open at as_of are all listed.",
    ]
    if not inputs.current:
        notes.append(
            "Feed states are shown only in a report of the present moment; the advisory evidence is the "
            "database revision in force at as_of."
        )
        then = inputs.advisories_then or {}
        revision = inputs.advisories.revision if inputs.advisories is not None else None
        notes.append(
            f"IDs, aliases and CVSS scores are those of the advisory records in force at as_of (revision {revision})."
        )
        unnamed = sum(1 for f in inputs.findings if (f.ids, f.package) not in then)
        if unnamed:
            notes.append(
                f"{unnamed} finding{'s' if unnamed != 1 else ''} had no advisory record in force at as_of under any "
                "of its names: shown with the names known now."
            )
    rescored = any(
        any(e.kind == "changed" and e.at > inputs.as_of and "severity" in e.detail for e in f.events)
        and not _score_replayed(inputs, f)
        for f in inputs.findings
    )
    if rescored:
        notes.append(
            "A score is left empty where the severity changed after as_of and the records then do not give it."
        )
    if inputs.changes_truncated:
        notes.append("The change log of the period is longer than the report holds; narrow the period with since.")
    return notes


def _score_replayed(inputs: AuditInputs, record: FindingRecord) -> bool:
    named = (inputs.advisories_then or {}).get((record.ids, record.package))
    return named is not None and named.rating == finding_at(record, inputs.as_of).severity
