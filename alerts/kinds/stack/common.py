"""Shared pieces of the stack rule kinds: the provider name, severity levels, finding details."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from alerts.kinds.base import Evaluation, RuleContext
from alerts.model import Condition, Verdict
from monitor.core.matchers import Matcher
from monitor.stack.advisories.severity import RANK
from monitor.stack.plan.model import Plan
from monitor.stack.providers import STACK
from monitor.stack.versions import parse_version
from monitor.stack.view import OpenFinding, ProjectStack

MinSeverity = Literal["any", "low", "medium", "high", "critical"]
Group = Literal["package", "finding"]
"""`package` (default): one alert per (project, package) summing its findings; `finding`: one per vulnerability."""


def view(ctx: RuleContext) -> ProjectStack | None:
    return ctx.data(STACK)


def at_least(finding: OpenFinding, minimum: str) -> bool:
    """`any` includes findings without a severity; otherwise the CVSS rating must reach `minimum`."""
    return minimum == "any" or RANK.get(finding.severity, 0) >= RANK[minimum]


def finding_details(finding: OpenFinding) -> dict[str, Any]:
    return {
        "group": "finding",
        "package": finding.package,
        "versions": ", ".join(finding.versions),
        "variant": finding.variant or "",
        "ids": ", ".join(finding.ids),
        "severity": finding.severity,
        "score": finding.score,
        "state": finding.state,
        "summary": finding.summary,
        "fixed_in": finding.fixed_in or "",
        "fix_available_at": finding.fix_available_at.isoformat() if finding.fix_available_at else "",
        "first_seen_at": finding.first_seen_at.isoformat(),
        "exposed_since": finding.exposed_since.isoformat() if finding.exposed_since else "",
    }


FINDING_VARS = (
    "package",
    "versions",
    "variant",
    "ids",
    "severity",
    "score",
    "state",
    "summary",
    "fixed_in",
    "fix_available_at",
    "first_seen_at",
    "exposed_since",
)


def with_clears(verdicts: list[Verdict], ctx: RuleContext) -> Evaluation:
    """The verdicts, plus an explicit CLEAR for every alert this kind fired before that has no
    verdict now (a fixed or ignored finding): the engine treats a vanished series as no data,
    which never resolves, so the kind remembers what it fired (its memory) and clears it."""
    emitted = {tuple(sorted(v.labels.items())) for v in verdicts}
    previous = ctx.memory.get("firing", [])
    out = list(verdicts)
    for item in previous if isinstance(previous, list) else []:
        labels = {str(k): str(v) for k, v in item}
        if tuple(sorted(labels.items())) not in emitted:
            out.append(
                Verdict(
                    labels, Condition.CLEAR, None, {"reason": "the finding is fixed, ignored or no longer selected"}
                )
            )
    firing = sorted([list(map(list, sorted(v.labels.items()))) for v in verdicts if v.condition is Condition.FIRE])
    return Evaluation(out, {"firing": firing})


def promql_selector(metric: str, *matchers: str) -> str:
    """`metric{a="b",c=~"d"}` from matcher texts, skipping empty ones (an unscoped rule has no project matcher)."""
    inner = ",".join(m for m in matchers if m)
    return f"{metric}{{{inner}}}" if inner else metric


def promql_one_of(label: str, values: list[str]) -> str:
    """`label=~"a|b"`, the values escaped for RE2 and then for the PromQL string."""
    regex = "|".join("".join("\\" + c if c in _REGEX_SPECIAL else c for c in v) for v in values)
    return str(Matcher.of(label, "=~", regex))


_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")


def by_package(findings: Iterable[OpenFinding]) -> dict[str, list[OpenFinding]]:
    out: dict[str, list[OpenFinding]] = {}
    for finding in findings:
        out.setdefault(finding.package, []).append(finding)
    return out


def _worst_first(finding: OpenFinding) -> tuple[int, float, str]:
    return (-RANK.get(finding.severity, 0), -(finding.score or 0.0), finding.vuln_id)


def package_details(package: str, findings: Sequence[OpenFinding], plan: Plan | None) -> dict[str, Any]:
    """What one alert per package says: counts by severity, the worst finding, the plan's target."""
    ordered = sorted(findings, key=_worst_first)
    worst = ordered[0]
    counts: dict[str, int] = {}
    for f in ordered:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    entry = plan.for_package(package) if plan is not None else None
    fixes = [f.fixed_in for f in ordered if f.fixed_in]
    return {
        "group": "package",
        "package": package,
        "versions": ", ".join(dict.fromkeys(v for f in ordered for v in f.versions)),
        "variant": worst.variant or "",
        "findings": len(ordered),
        "counts": ", ".join(f"{n} {s}" for s, n in counts.items()),
        "vulnerabilities": ", ".join(f.vuln_id for f in ordered),
        "worst": worst.vuln_id,
        "severity": worst.severity,
        "score": worst.score,
        "summary": worst.summary,
        "fixed_in": max(fixes, key=_version_key) if fixes else "",
        "target": entry.target or "" if entry is not None else "",
        "target_closes": ", ".join(f"{n} {s}" for s, n in entry.closes.items()) if entry is not None else "",
        "unfixable": sum(entry.unfixable_counts.values()) if entry is not None else 0,
        "target_unverified": bool(entry is not None and entry.basis == "advisories"),
    }


def _version_key(text: str) -> Any:
    parsed = parse_version(text)
    return (parsed is not None, parsed or text)


PACKAGE_VARS = (
    "group",
    "findings",
    "counts",
    "vulnerabilities",
    "worst",
    "target",
    "target_closes",
    "unfixable",
    "target_unverified",
)

PACKAGE_SUMMARY = (
    "{{ details.package }} {{ details.versions }}: {{ details.counts }} open "
    "(worst {{ details.worst }}, {{ details.severity }}{% if details.score %} {{ details.score }}{% endif %})"
    "{% if details.target %}; upgrade to {{ details.target }}"
    "{% if details.target_unverified %} (unverified){% endif %}, which closes {{ details.target_closes }}"
    "{% if details.unfixable %}; {{ details.unfixable }} without a fix{% endif %}"
    "{% elif details.fixed_in %}; fixed in {{ details.fixed_in }}{% else %}; no known fix{% endif %}"
)
