"""The one-shot engine behind `mlmon scan`: read inventories, load advisories, match, judge.

The service runs the same pieces (inventory readers, AdvisoryIndex, `findings.find`, staleness)
on stored data; this module wires them for a CI run with no database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from monitor.core.errors import SourceError
from monitor.http import HttpFactory
from monitor.stack.advisories.index import AdvisoryIndex
from monitor.stack.advisories.model import Advisory
from monitor.stack.advisories.offline import Rejected, load_offline, parse_records
from monitor.stack.advisories.osv_api import fetch_records, list_records
from monitor.stack.advisories.severity import RANK
from monitor.stack.findings import Finding, IgnoreRule, expired, find
from monitor.stack.inventory.model import Inventory
from monitor.stack.plan.inputs import plan_for
from monitor.stack.plan.model import IndexLookup, Plan
from monitor.stack.releases import ReleaseHistory, Staleness, staleness

FailOn = Literal["any", "low", "medium", "high", "critical", "never"]
FAIL_ON: tuple[str, ...] = ("any", "low", "medium", "high", "critical", "never")


@dataclass
class AdvisoryLoad:
    advisories: list[Advisory]
    rejected: list[Rejected]
    source: str
    """What was read: the path, or the OSV API URL."""
    kind: str
    """offline, osv-api or store."""
    notes: list[str] = field(default_factory=list)


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def load_advisories(
    spec: str, packages: Iterable[str], http: HttpFactory, progress: Callable[[int, int], None] | None = None
) -> AdvisoryLoad:
    """Advisories from an offline database (path) or the live OSV API (URL, for `packages` only)."""
    if not is_url(spec):
        loaded = load_offline(spec, progress)
        return AdvisoryLoad(loaded.advisories, loaded.rejected, spec, "offline")
    with http.client(base_url=spec.rstrip("/")) as client:
        listing = list_records(client, packages)
        docs, refused = fetch_records(client, listing.ids, progress)
    parsed = parse_records(docs)
    rejected = [*parsed.rejected, *(Rejected(where, why) for where, why in refused)]
    return AdvisoryLoad(parsed.advisories, rejected, spec.rstrip("/"), "osv-api")


@dataclass
class TargetReport:
    name: str
    inventory: Inventory
    findings: list[Finding]
    staleness: list[Staleness] = field(default_factory=list)
    plan: Plan | None = None

    def open_findings(self) -> list[Finding]:
        return [f for f in self.findings if not f.ignored]


@dataclass
class ScanReport:
    targets: list[TargetReport]
    generated_at: datetime
    advisories: AdvisoryLoad
    ignores: list[IgnoreRule] = field(default_factory=list)
    expired_ignores: list[IgnoreRule] = field(default_factory=list)
    index_url: str | None = None
    notes: list[str] = field(default_factory=list)

    def all_findings(self) -> Iterable[tuple[TargetReport, Finding]]:
        for target in self.targets:
            for finding in target.findings:
                yield target, finding


@dataclass(frozen=True)
class Policy:
    fail_on: str = "any"
    fail_on_undetermined: bool = False
    fixable_only: bool = False
    max_minors_behind: int | None = None

    def violations(self, report: ScanReport) -> list[str]:
        """Why the scan fails the policy (empty when it passes). Ignored findings never count."""
        return [text for _, text in self.reasons(report)]

    def _at_or_above(self, rating: str) -> bool:
        return self.fail_on == "any" or (self.fail_on != "never" and RANK[rating] >= RANK[self.fail_on])

    def reasons(self, report: ScanReport) -> list[tuple[str, str]]:
        """(kind, text) of every violation; kind is `finding`, `undetermined` or `stale`."""
        out: list[tuple[str, str]] = []
        for target, finding in report.all_findings():
            if finding.ignored:
                continue
            versions = ", ".join(finding.versions)
            if finding.state == "undetermined":
                # --fail-on still sets the bar: an undetermined medium does not fail --fail-on critical
                if self.fail_on_undetermined and (self.fail_on == "never" or self._at_or_above(finding.rating)):
                    out.append(
                        ("undetermined", f"{target.name}: {finding.package} {versions}: {finding.key} "
                         f"({finding.rating}) is undetermined")
                    )  # fmt: skip
                continue
            if self.fixable_only and finding.fixed_in is None:
                continue
            if self._at_or_above(finding.rating):
                out.append(
                    ("finding", f"{target.name}: {finding.package} {versions}: {finding.key} ({finding.rating})")
                )
        if self.max_minors_behind is not None:
            out.extend(
                (
                    "stale",
                    f"{target.name}: {stale.package} {stale.installed} is {stale.minors_behind} minor "
                    f"releases behind {stale.latest} (allowed: {self.max_minors_behind})",
                )
                for target in report.targets
                for stale in target.staleness
                if stale.minors_behind > self.max_minors_behind
            )
        return out

    def summary(self, report: ScanReport) -> str:
        """One line saying what failed, counted by kind (empty when the policy passes)."""
        counts: dict[str, int] = {}
        for kind, _ in self.reasons(report):
            counts[kind] = counts.get(kind, 0) + 1
        parts = []
        if counts.get("finding"):
            parts.append(f"{counts['finding']} finding(s) at or above --fail-on {self.fail_on}")
        if counts.get("undetermined"):
            parts.append(f"{counts['undetermined']} undetermined finding(s) (--fail-on-undetermined)")
        if counts.get("stale"):
            parts.append(f"{counts['stale']} package(s) more than {self.max_minors_behind} minor releases behind")
        return "; ".join(parts)


def judge(
    inventories: Sequence[tuple[str, Inventory]],
    index: AdvisoryIndex,
    load: AdvisoryLoad,
    now: datetime,
    *,
    ignores: Sequence[IgnoreRule] = (),
    histories: Mapping[str, ReleaseHistory] | None = None,
    index_url: str | None = None,
    plan_lookup: IndexLookup | None = None,
    plan_index: str | None = None,
) -> ScanReport:
    """Findings, staleness and, with `plan_lookup`, the remediation plan of every inventory."""
    targets: list[TargetReport] = []
    for name, inventory in inventories:
        findings = find(inventory, index, ignores=ignores, now=now, histories=histories)
        stale = []
        for package, history in (histories or {}).items():
            for version in inventory.versions(package):
                found = staleness(history, version)
                if found is not None:
                    stale.append(found)
        plan = None
        if plan_lookup is not None:
            plan = plan_for(inventory, findings, index, plan_lookup, index_url=plan_index, now=now)
        targets.append(TargetReport(name, inventory, findings, stale, plan))
    return ScanReport(
        targets=targets,
        generated_at=now,
        advisories=load,
        ignores=list(ignores),
        expired_ignores=expired(ignores, now),
        index_url=index_url,
    )


def packages_of(inventories: Iterable[Inventory]) -> set[str]:
    return {name for inv in inventories for name in inv.names()}


def describe_error(exc: Exception) -> str:
    if isinstance(exc, SourceError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def report_doc(report: ScanReport) -> dict[str, Any]:
    """The JSON output of a scan (also the basis of the other formats)."""
    return {
        "generated_at": report.generated_at.isoformat(),
        "advisories": {
            "source": report.advisories.source,
            "kind": report.advisories.kind,
            "records": len(report.advisories.advisories),
            "rejected": [{"where": r.where, "reason": r.reason} for r in report.advisories.rejected],
            "notes": report.advisories.notes,
        },
        "index": report.index_url,
        "ignores": [r.to_doc() for r in report.ignores],
        "expired_ignores": [r.to_doc() for r in report.expired_ignores],
        "notes": report.notes,
        "targets": [
            {
                "target": t.name,
                "kind": t.inventory.kind,
                "location": t.inventory.location,
                "python": t.inventory.python_version,
                "torch": t.inventory.torch.to_doc() if t.inventory.torch else None,
                "packages": len(t.inventory.packages),
                "files": list(t.inventory.files),
                "inventory_notes": list(t.inventory.notes),
                "staleness": [s.to_doc() for s in t.staleness],
                "findings": [f.to_doc(t.inventory) for f in t.findings],
                "plan": t.plan.to_doc() if t.plan is not None else None,
            }
            for t in report.targets
        ],
    }
