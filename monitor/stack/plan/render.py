"""The plan as text: `mlmon scan --format plan`, the plan block of the table, alert summaries."""

from __future__ import annotations

from collections.abc import Mapping

from monitor.stack.plan.model import Companion, PackagePlan, Plan


def counts(by: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {severity}" for severity, n in by.items()) or "none"


def headline(p: PackagePlan) -> str:
    """One line: `torch 2.5.1 -> 2.11.0 closes 13 (1 critical, 8 high, 4 medium); 9 without a fix`."""
    installed = ", ".join(p.installed)
    if p.target is None:
        line = f"{p.package} {installed}: no listed version closes any of its {p.findings} finding(s)"
    else:
        closed = sum(p.closes.values())
        line = f"{p.package} {installed} -> {p.target} closes {closed} ({counts(p.closes)})"
        if p.basis == "advisories":
            line += " [unverified: index not read]"
    unfixable = sum(p.unfixable_counts.values())
    if unfixable:
        line += f"; {unfixable} without a fix ({counts(p.unfixable_counts)})"
    if p.still_open:
        line += f"; {len(p.still_open)} fixable but not by one version"
    return line


def companion_line(c: Companion) -> str:
    if c.gap is not None:
        return f"{c.package} {c.installed}: {c.gap.describe()}"
    if c.proposed is None:
        return f"{c.package} {c.installed}: {c.blocker or c.evidence} [{c.pairing}]"
    change = "keep" if c.proposed == c.installed else f"-> {c.proposed}"
    word = {
        "declared": "declared",
        "torch-pins": "pinned by torch",
        "range": "allowed, not declared",
    }.get(c.pairing, c.pairing)
    return f"{c.package} {c.installed} {change} ({word}: {c.evidence})"


def plan_lines(plan: Plan, indent: str = "") -> list[str]:
    if not plan.packages:
        return [f"{indent}Nothing to upgrade: no open finding."]
    lines = []
    for p in plan.packages:
        lines.append(f"{indent}{headline(p)}")
        sub = indent + "    "
        if p.gap is not None:
            lines.append(f"{sub}index: {p.gap.describe()}")
        if p.build is not None:
            build = p.build.gap.describe() if p.build.gap else p.build.detail
            lines.append(f"{sub}build ({p.build.variant}): {p.build.status.replace('_', ' ')}: {build}")
        lines += [f"{sub}companion {companion_line(c)}" for c in p.companions]
        if p.inferred:
            lines.append(f"{sub}inferred (above last_affected, no fixed event): {', '.join(p.inferred)}")
        if p.unfixable:
            lines.append(f"{sub}no fix: {', '.join(p.unfixable)}")
        lines += [f"{sub}note: {n}" for n in p.notes]
    return lines


def render_plan(plans: Mapping[str, Plan]) -> str:
    """`mlmon scan --format plan`: per target, what to upgrade, to what."""
    out: list[str] = []
    for name, plan in plans.items():
        index = f" (index {plan.index_url})" if plan.index_url else ""
        out += [f"== {name}: remediation plan{index}", *plan_lines(plan), ""]
    if plans:
        first = next(iter(plans.values()))
        out.append(f"Rule: {first.rule}.")
    return "\n".join(out) + "\n"
