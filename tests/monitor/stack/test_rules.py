"""The stack rule kinds as pure functions of their view: thresholds, ignores, clearing, PromQL."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.kinds.base import ProjectView, RuleContext
from alerts.kinds.stack import patch_sla, stale, vulnerable
from alerts.model import Condition
from alerts.templates import render
from monitor.stack.plan.model import PackagePlan, Plan
from monitor.stack.releases import ReleaseHistory, staleness
from monitor.stack.view import OpenFinding, ProjectStack

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PROJECT = ProjectView("churn", "churn", None, {}, [], [])


def finding(vuln: str, severity: str, score: float | None, *, fixed_in: str | None = "2.6.0", ignored: bool = False,
            state: str = "affected", fix_days_ago: int = 40, package: str = "torch") -> OpenFinding:  # fmt: skip
    return OpenFinding(
        id=1, package=package, vuln_id=vuln, ids=(vuln,), versions=("2.5.1+cu121",), variant="CUDA 12.1",
        state=state, severity=severity, score=score, summary="s", fixed_in=fixed_in,
        fix_available_at=NOW - timedelta(days=fix_days_ago) if fixed_in else None, published=None,
        first_seen_at=NOW - timedelta(days=3), exposed_since=NOW - timedelta(days=9), ignored=ignored,
        ignore_reason="r" if ignored else None, ignore_expires=None,
    )  # fmt: skip


def ctx(view: ProjectStack | None, memory: Mapping[str, Any] | None = None) -> RuleContext:
    return RuleContext(NOW, PROJECT, {}, memory=memory or {}, extra={"stack": view})


FINDINGS = (
    finding("CVE-CRIT", "critical", 9.8),
    finding("CVE-HIGH-NOFIX", "high", 7.8, fixed_in=None),
    finding("CVE-MED", "medium", 5.3),
    finding("CVE-UNK", "unknown", None),
    finding("CVE-UNDET", "high", 7.5, state="undetermined", fixed_in=None),
    finding("CVE-IGN", "critical", 9.1, ignored=True),
    finding("CVE-PIL", "high", 8.8, package="pillow"),
)


def labels(evaluation: Any, condition: Condition = Condition.FIRE) -> set[str]:
    return {
        v.labels.get("vulnerability", v.labels.get("package", ""))
        for v in evaluation.verdicts
        if v.condition is condition
    }


def test_vulnerable_thresholds() -> None:
    view = ProjectStack(findings=FINDINGS)
    high = vulnerable.VulnerableParams(severity="high", group="finding")
    assert labels(vulnerable.evaluate(high, ctx(view))) == {"CVE-CRIT", "CVE-HIGH-NOFIX", "CVE-PIL"}
    fixable = vulnerable.VulnerableParams(severity="high", fixable_only=True, packages=["Torch"], group="finding")
    assert labels(vulnerable.evaluate(fixable, ctx(view))) == {"CVE-CRIT"}
    everything = vulnerable.VulnerableParams(severity="any", include_undetermined=True, group="finding")
    assert labels(vulnerable.evaluate(everything, ctx(view))) == {f.vuln_id for f in FINDINGS} - {"CVE-IGN"}
    nodata = vulnerable.evaluate(high, ctx(None))
    assert [v.condition for v in nodata.verdicts] == [Condition.NODATA]


def test_fired_alerts_are_cleared_when_their_finding_goes() -> None:
    params = vulnerable.VulnerableParams(severity="high", group="finding")
    first = vulnerable.evaluate(params, ctx(ProjectStack(findings=FINDINGS)))
    assert first.memory is not None
    fixed = vulnerable.evaluate(params, ctx(ProjectStack(findings=FINDINGS[2:]), first.memory))
    assert labels(fixed, Condition.CLEAR) == {"CVE-CRIT", "CVE-HIGH-NOFIX"}
    assert labels(fixed) == {"CVE-PIL"}
    later = vulnerable.evaluate(params, ctx(ProjectStack(findings=FINDINGS[2:]), fixed.memory))
    assert labels(later, Condition.CLEAR) == set()  # cleared once, then forgotten


def test_patch_sla() -> None:
    view = ProjectStack(findings=FINDINGS)
    result = patch_sla.evaluate(patch_sla.PatchSlaParams(group="finding"), ctx(view))
    by = {v.labels["vulnerability"]: v for v in result.verdicts}
    assert by["CVE-CRIT"].condition is Condition.FIRE and by["CVE-CRIT"].value == (40 - 7) * 86400
    assert by["CVE-PIL"].condition is Condition.FIRE  # high: 30 days
    assert by["CVE-MED"].condition is Condition.CLEAR and by["CVE-MED"].value == (40 - 90) * 86400
    assert "CVE-HIGH-NOFIX" not in by and "CVE-IGN" not in by and "CVE-UNK" not in by
    strict = patch_sla.PatchSlaParams.model_validate({"sla": {"unknown": "10d", "medium": "1d"}, "group": "finding"})
    assert labels(patch_sla.evaluate(strict, ctx(view))) >= {"CVE-UNK", "CVE-MED"}


def test_grouped_by_package_by_default_with_counts_worst_and_plan_target() -> None:
    plan = Plan(
        (
            PackagePlan("torch", ("2.5.1+cu121",), "2.6.0", "index", {"critical": 1}, ("CVE-CRIT",),
                        unfixable=("CVE-HIGH-NOFIX",), unfixable_counts={"high": 1}),
        ),
        "http://index.test/simple",
    )  # fmt: skip
    view = ProjectStack(findings=FINDINGS, plan=plan)
    result = vulnerable.evaluate(vulnerable.VulnerableParams(severity="high"), ctx(view))
    by = {v.labels["package"]: v for v in result.verdicts}
    assert set(by) == {"torch", "pillow"} and all(set(v.labels) == {"package"} for v in result.verdicts)
    torch = by["torch"]
    assert (
        torch.value == 2.0 and torch.details["counts"] == "1 critical, 1 high" and torch.details["worst"] == "CVE-CRIT"
    )
    summary = render({"summary": vulnerable.KIND.summary}, {"details": torch.details, "labels": torch.labels})
    assert summary["summary"] == (
        "torch 2.5.1+cu121: 1 critical, 1 high open (worst CVE-CRIT, critical 9.8); upgrade to 2.6.0, "
        "which closes 1 critical; 1 without a fix"
    )
    pillow = render({"summary": vulnerable.KIND.summary}, {"details": by["pillow"].details, "labels": {}})
    assert pillow["summary"] == "pillow 2.5.1+cu121: 1 high open (worst CVE-PIL, high 8.8); fixed in 2.6.0"
    # fixed: the package's alert clears
    fixed = vulnerable.evaluate(
        vulnerable.VulnerableParams(severity="high"), ctx(ProjectStack(findings=FINDINGS[2:]), result.memory)
    )
    assert labels(fixed, Condition.CLEAR) == {"torch"} and labels(fixed) == {"pillow"}

    late = patch_sla.evaluate(patch_sla.PatchSlaParams(), ctx(view))
    (torch_late,) = [v for v in late.verdicts if v.labels == {"package": "torch"}]
    assert torch_late.value == 1.0 and torch_late.details["most_overdue"] == "CVE-CRIT"
    text = render({"summary": patch_sla.KIND.summary}, {"details": torch_late.details, "labels": torch_late.labels})
    assert text["summary"] == (
        "torch 2.5.1+cu121: 1 finding(s) past their patch SLA (1 critical); the most overdue, CVE-CRIT, by 4w5d "
        "(due 2026-10-18 12:00:00 UTC); upgrade to 2.6.0, which closes 1 critical"
    )
    assert "e+" not in text["summary"] and ".0000" not in text["summary"]


def test_stale(releases: dict[str, Any]) -> None:
    history = ReleaseHistory.from_doc("torch", releases)
    view = ProjectStack(
        staleness=tuple(s for s in (staleness(history, "2.13.0+cpu"), staleness(history, "2.5.1")) if s)
    )
    two = stale.StaleParams(max_minors_behind=2)
    result = stale.evaluate(two, ctx(view))
    (verdict,) = result.verdicts
    assert verdict.condition is Condition.FIRE and verdict.value == 10.0 and verdict.details["installed"] == "2.5.1"
    assert "10 minor releases behind 2.15.0" in verdict.details["reason"]
    latest_but_one = staleness(history, "2.14.1")
    assert latest_but_one is not None
    recent = ProjectStack(staleness=(latest_but_one,))
    assert stale.evaluate(two, ctx(recent)).verdicts[0].condition is Condition.CLEAR
    unsupported = stale.StaleParams(unsupported_minor=True)
    assert stale.evaluate(unsupported, ctx(recent)).verdicts[0].condition is Condition.FIRE
    old = stale.StaleParams(max_behind="30d")
    assert stale.evaluate(old, ctx(recent)).verdicts[0].condition is Condition.CLEAR  # 2.15.0 is 23 days old
    missing = stale.evaluate(two, ctx(ProjectStack(tracked={"torch": ("2.5.1",)})))
    assert missing.verdicts[0].condition is Condition.NODATA
    gone = stale.evaluate(two, ctx(ProjectStack(), result.memory))
    assert [v.condition for v in gone.verdicts] == [Condition.CLEAR]


def test_promql_equivalents() -> None:
    project = 'project=~"churn|vision"'
    assert vulnerable.promql(vulnerable.VulnerableParams(severity="high"), project) == (
        'sum by (project, package) (mlmon_stack_findings{project=~"churn|vision",state=~"affected",'
        'severity=~"critical|high",ignored="false"}) > 0'
    )
    assert vulnerable.promql(vulnerable.VulnerableParams(fixable_only=True), project) is None
    behind = 'max by (project, package) (mlmon_stack_minors_behind{project=~"churn|vision",package="torch"})'
    yanked = 'max by (project, package) (mlmon_stack_installed_yanked{project=~"churn|vision",package="torch"})'
    assert stale.promql(stale.StaleParams(max_minors_behind=2), project) == (
        f"{behind} and ({behind} > 2 or {yanked} == 1)"
    ), "yanked is on by default, so it joins the minors test"
