"""What an exported rule cannot carry over from mlmon, in words for the rules file and stderr.

The PromQL of each kind lives with the kind (`RuleKind.promql`); the caveats live here, beside
the export, because they describe the gap between mlmon's engine and Prometheus's, not the kind.
"""

from __future__ import annotations

from typing import Any

from alerts.compiled import CompiledRule

NO_DATA = (
    "no data: mlmon keeps a firing alert firing (flagged nodata) while its series are missing or stale; "
    "Prometheus resolves it as soon as the expression returns nothing"
)

_NO_HOOK = {
    "change": "sequential change detection (CUSUM) over the stored points, its state kept in the rule's memory; "
    "Prometheus sees only the newest value of each series",
    "patch_sla": "needs each finding's fix date; /metrics exports only mlmon_stack_overdue_findings, counted under "
    "stack.sla rather than the rule's sla",
    "absent": "/metrics shows the newest value of each stored series but not its age, so Prometheus cannot tell a "
    "stale series from a fresh one (export only `absent(...)` by hand if a vanished series is enough)",
    "spend_change": "needs the last complete day and the baseline window's mean, which /metrics does not export",
    "idle_gpu": "needs GPU busy and usage over the rule's window; /metrics exports only the newest day",
}


def skip_reason(rule: CompiledRule) -> str:
    """Why a rule has no PromQL (its kind has no hook, or the hook declined these params)."""
    kind, params = rule.kind.name, rule.params
    if rule.kind.promql is None:
        return f"rule kind {kind!r} has no PromQL equivalent: {_NO_HOOK.get(kind, 'the kind does not provide one')}"
    if kind == "vulnerable" and _get(params, "fixable_only"):
        return "fixable_only: /metrics has no label telling whether a finding has a fix"
    if kind == "distribution":
        correction = _get(params, "correction")
        return f"correction {correction!r} ranks the p-values of one push, which PromQL cannot (use bonferroni or none)"
    return f"rule kind {kind!r} has no PromQL equivalent for these params"


def differences(rule: CompiledRule, scope_note: str | None) -> list[str]:
    """Where the exported rule behaves differently from mlmon's evaluation of it."""
    notes = [NO_DATA]
    if scope_note:
        notes.append(scope_note)
    kind, params = rule.kind.name, rule.params
    if _get(params, "no_data_after") is not None:
        notes.append("no_data_after: /metrics carries no sample timestamps, so staleness is not checked")
    if kind == "threshold":
        if _get(params, "clear") is not None:
            notes.append(
                f"hysteresis: mlmon clears only past clear={_get(params, 'clear')}; "
                "this rule resolves as soon as the comparison is false"
            )
        if _get(params, "over") is not None and _get(params, "agg") != "last":
            notes.append(
                "over/agg: mlmon aggregates the stored points of the window; Prometheus aggregates its scrapes, "
                "which weights each value by how long it was the newest"
            )
    elif kind == "absent":
        notes.append(
            "age: /metrics exports the newest value without its timestamp, so timestamp() is the scrape time; "
            "this rule fires only when the series is missing from /metrics, not when its newest sample is old"
        )
    elif kind == "source_down":
        notes.append(
            "a source that never succeeded: mlmon counts no_success_for from its first run; "
            "here it has no last-success series and only its consecutive failures count"
        )
    elif kind == "vulnerable":
        notes.append("one alert per (project, package), value = number of findings; mlmon: one per vulnerability")
    elif kind == "stale":
        notes.append("several installed versions: mlmon judges the oldest; here any installed version can fire")
    elif kind == "drop":
        if _get(params, "examples_metric") is not None:
            notes.append(
                "significance: a drop past the margin that is not yet significant HOLDs in mlmon (keeps its state) "
                "and resolves here; mlmon takes n only from the examples point written with the value"
            )
        if _get(params, "unchanged_for") is not None:
            notes.append("unchanged_for: any age series of the joined labels counts (mlmon takes one)")
    elif kind == "budget":
        notes.append(
            f"hysteresis: mlmon clears a threshold below clear={_get(params, 'clear')} x the threshold; here it "
            "resolves when the threshold is no longer reached; the value is 1 (mlmon: the share of the budget); "
            'the spend="unknown" alert (budget not evaluable) is mlmon\'s only'
        )
    elif kind == "distribution":
        notes.append(
            "mlmon compares the statistics of the newest push only; here the newest value of each statistic "
            "(value = the largest statistic past its threshold, mlmon: the worst relative to its threshold)"
        )
    if kind != "source_down":
        notes.append(
            "mlmon mutes this alert's notifications while a source_down alert of its project fires; "
            "with Alertmanager, add an inhibit rule (source alertname=source-down rule, equal: [project])"
        )
    return notes


def _get(params: Any, name: str) -> Any:
    return getattr(params, name, None)
