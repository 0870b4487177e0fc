"""The `table` output of `mlmon scan`: one block per target, ignored findings and staleness included."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from monitor.stack.findings import Finding
from monitor.stack.plan.render import plan_lines
from monitor.stack.releases import Staleness
from monitor.stack.scan import ScanReport, TargetReport


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = []
    for row in (header, *rows):
        cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=False)]
        lines.append("  ".join([*cells, str(row[-1])]).rstrip())
    return lines


def _severity(finding: Finding) -> str:
    score = f" {finding.score:.1f}" if finding.score is not None else ""
    flag = " *" if finding.disagreement else ""
    return f"{finding.rating}{score}{flag}"


def _fix(finding: Finding) -> str:
    if finding.fixed_in:
        return finding.fixed_in
    return "no known fix"


def _summary(finding: Finding, width: int = 70) -> str:
    text = " ".join(finding.summary.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _rows(findings: Sequence[Finding]) -> list[list[str]]:
    return [[f.package, ", ".join(f.versions), f.key, _severity(f), f.state, _fix(f), _summary(f)] for f in findings]


def _stale_line(stale: Staleness, now: datetime) -> str:
    if stale.latest is None:
        return f"{stale.package} {stale.installed}: the index lists no final release"
    parts = [f"{stale.package} {stale.installed}: latest {stale.latest}"]
    if stale.newer_releases == 0:
        parts.append("up to date")
    else:
        days = stale.behind_seconds(now) / 86400
        parts.append(f"{stale.minors_behind} minor release(s) behind")
        if stale.behind_since is not None:
            parts.append(
                f"a newer release ({stale.first_newer}) exists since {stale.behind_since:%Y-%m-%d} ({days:.0f} days)"
            )
    if stale.minor_supported is False:
        parts.append("this minor line gets no more patch releases")
    if stale.installed_yanked:
        parts.append(f"YANKED ({stale.yanked_reason or 'no reason given'})")
    elif not stale.installed_known:
        parts.append("not listed by the index (a local or private build?)")
    return "; ".join(parts)


def _target(target: TargetReport, now: datetime) -> list[str]:
    inv = target.inventory
    torch = f"; torch {inv.torch.version} ({inv.torch.describe()})" if inv.torch else ""
    python = f"; Python {inv.python_version}" if inv.python_version else ""
    lines = [f"== {target.name} ({inv.kind}): {len(inv.packages)} packages{torch}{python}"]
    active = [f for f in target.findings if not f.ignored]
    affected = [f for f in active if f.state == "affected"]
    undetermined = [f for f in active if f.state == "undetermined"]
    ignored = [f for f in target.findings if f.ignored]
    header = ("PACKAGE", "VERSION", "ID", "SEVERITY", "STATE", "FIX", "SUMMARY")
    if target.plan is not None and target.plan.packages:
        lines += ["", "Plan (what to upgrade, to what):", *plan_lines(target.plan, "  ")]
    if affected:
        lines += ["", f"Vulnerable ({len(affected)}):", *table(header, _rows(affected))]
    else:
        lines += ["", "No known vulnerability affects these versions."]
    if undetermined:
        lines += [
            "",
            f"Undetermined ({len(undetermined)}): a record's version bounds are not PEP 440",
            *table(header, _rows(undetermined)),
        ]
    if ignored:
        lines += ["", f"Ignored ({len(ignored)}):"]
        for f in ignored:
            assert f.ignore is not None
            lines.append(
                f"  {f.package} {', '.join(f.versions)} {f.key} ({_severity(f)}): {f.ignore.reason!r} "
                f"until {f.ignore.expires.isoformat()} [{f.ignore.origin or f.ignore.id}]"
            )
    hints = [f for f in active if f.fix_hint]
    if hints:
        lines += ["", "Without a fixed version:"]
        lines += [f"  {f.package} {f.key}: {f.fix_hint}" for f in hints]
    if target.staleness:
        lines += ["", "Releases:"] + [f"  {_stale_line(s, now)}" for s in target.staleness]
    if inv.notes:
        lines += ["", "Notes:"] + [f"  {n}" for n in inv.notes[:50]]
        if len(inv.notes) > 50:
            lines.append(f"  ... and {len(inv.notes) - 50} more")
    return lines


def render_table(report: ScanReport, violations: Sequence[str] = ()) -> str:
    adv = report.advisories
    lines = [
        f"Advisories: {adv.kind} {adv.source}: {len(adv.advisories)} records"
        + (f", {len(adv.rejected)} rejected" if adv.rejected else "")
    ]
    lines += [f"  rejected {r.where}: {r.reason}" for r in adv.rejected[:20]]
    lines += [f"  {n}" for n in adv.notes]
    if report.index_url:
        lines.append(f"Package index: {report.index_url}")
    lines += [f"Note: {n}" for n in report.notes]
    for rule in report.expired_ignores:
        lines.append(
            f"Expired ignore (no longer applied): {rule.id} expired {rule.expires.isoformat()} [{rule.origin}]"
        )
    for target in report.targets:
        lines += ["", *_target(target, report.generated_at)]
    lines.append("")
    if violations:
        lines.append(f"Policy violated ({len(violations)}):")
        lines += [f"  {v}" for v in violations]
    else:
        lines.append("Policy passed.")
    lines.append("(* = the records of this vulnerability disagree on its severity or its range)")
    return "\n".join(lines) + "\n"
