"""Shared pieces of the stack rule kinds: the provider name, severity levels, finding details."""

from __future__ import annotations

from typing import Any, Literal

from alerts.kinds.base import Evaluation, RuleContext
from alerts.model import Condition, Verdict
from monitor.core.matchers import Matcher
from monitor.stack.advisories.severity import RANK
from monitor.stack.providers import STACK
from monitor.stack.view import OpenFinding, ProjectStack

MinSeverity = Literal["any", "low", "medium", "high", "critical"]


def view(ctx: RuleContext) -> ProjectStack | None:
    return ctx.data(STACK)


def at_least(finding: OpenFinding, minimum: str) -> bool:
    """`any` includes findings without a severity; otherwise the CVSS rating must reach `minimum`."""
    return minimum == "any" or RANK.get(finding.severity, 0) >= RANK[minimum]


def finding_details(finding: OpenFinding) -> dict[str, Any]:
    return {
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
