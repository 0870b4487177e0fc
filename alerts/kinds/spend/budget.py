"""`budget`: a project's spend against the budget in its `spend.budget`, actual and forecast.

    rules:
      - name: budget
        kind: budget                 # every project with a budget; its owners get the alert
        labels: {severity: warning}
        params: {clear: 0.95}

One alert per threshold of the budget, labelled `spend` (actual | forecast) and `threshold`
(`90%`, or an amount): it fires when the period's spend (or the period-end forecast) reaches the
threshold, and clears when it falls below `clear` x the threshold (in between it holds: no
flapping around the line). A new period starts from zero, so actual alerts resolve at the reset.
The value is the share of the budget (0.93 = 93%); details carry the amounts, currency, forecast
with its interval, and the period's end, and `details.message` says it all in one line.

While a counted source has stored nothing yet, the thresholds report no data. When the budget
cannot be evaluated (a counted source in another currency), they report no data too and a
`spend="unknown"` alert fires saying why.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from alerts.kinds.base import Evaluation, KindParams, RuleContext, RuleKind
from alerts.kinds.spend.common import money, spend_of
from alerts.model import Condition, Verdict
from monitor.spend.budget import BudgetStatus, ThresholdState
from monitor.spend.forecast import Forecast
from monitor.spend.providers import SPEND


class BudgetParams(KindParams):
    clear: float = Field(default=0.95, gt=0, le=1, description="clears below clear x threshold")
    actual: bool = True
    forecast: bool = True


def shift_note(f: Forecast, currency: str) -> str:
    """Says when the forecast runs from a new level of daily spend, and since when."""
    if f.shift is None:
        return ""
    moved = "rose" if f.shift.after > f.shift.before else "fell"
    return (
        f", at the new level of the last {f.shift_days} days: daily spend {moved} from "
        f"{money(f.shift.before, currency)} to {money(f.shift.after, currency)}"
    )


def _condition(state: ThresholdState, clear: float) -> Condition:
    if state.value is None:
        return Condition.NODATA
    if state.value >= state.amount:
        return Condition.FIRE
    if state.value < state.amount * clear:
        return Condition.CLEAR
    return Condition.HOLD


def describe(status: BudgetStatus) -> dict[str, Any]:
    """The numbers an owner acts on, raw and as text."""
    c = status.currency
    f = status.forecast
    return {
        "currency": c,
        "budget": status.amount,
        "budget_text": money(status.amount, c),
        "spent": round(status.spent, 2),
        "spent_text": money(status.spent, c),
        "percent_of_budget": round(status.used * 100, 1),
        "period": status.period.label,
        "period_kind": status.period.kind.value,
        "period_start": status.period.first.isoformat(),
        "period_end": status.period.last.isoformat(),
        "resets_at": status.period.stop.isoformat(),
        "days_left": round(status.days_left, 1),
        "forecast": None if f.point is None else round(f.point, 2),
        "forecast_lower": None if f.lower is None else round(f.lower, 2),
        "forecast_upper": None if f.upper is None else round(f.upper, 2),
        "forecast_confidence": f.confidence,
        "forecast_seasonality": f.seasonality,
        "forecast_shift": shift_note(f, c).removeprefix(", ") or None,
        "forecast_text": (
            f"{money(f.point, c)} ({f.confidence:.0%} interval {money(f.lower, c)} - {money(f.upper, c)}"
            f"{', one rate per weekday' if f.seasonality == 'weekly' else ''}"
            f"{shift_note(f, c)})"
            if f.available
            else f"no forecast ({f.reason})"
        ),
        "data_through": status.horizon.isoformat() if status.horizon else None,
        "sources": ", ".join(sorted(status.by_source)),
        "problems": "; ".join(status.problems),
        "waiting": "; ".join(status.waiting),
    }


def _message(state: ThresholdState, status: BudgetStatus, facts: dict[str, Any]) -> str:
    share = f"{state.value / status.amount:.0%}" if state.value is not None else "?"
    if state.basis == "forecast":
        return (
            f"forecast spend by {facts['period_end']} is {facts['forecast_text']}: {share} of the "
            f"{facts['budget_text']} {facts['period']} budget (threshold {state.label}); spent so far "
            f"{facts['spent_text']}, {facts['days_left']:g} days left"
        )
    return (
        f"spent {facts['spent_text']} of the {facts['budget_text']} {facts['period']} budget ({share}, threshold "
        f"{state.label}); the period ends {facts['period_end']}, {facts['days_left']:g} days left; "
        f"forecast {facts['forecast_text']}"
    )


def evaluate(params: BudgetParams, ctx: RuleContext) -> Evaluation:
    data = spend_of(ctx)
    if data is None or data.settings.budget is None:
        return Evaluation([])
    status = data.budget(ctx.now)
    assert status is not None
    facts = describe(status)
    verdicts: list[Verdict] = []
    usable = status.has_data
    for state in status.thresholds:
        if (state.basis == "actual" and not params.actual) or (state.basis == "forecast" and not params.forecast):
            continue
        labels = {"spend": state.basis, "threshold": state.label}
        details = {**facts, "threshold_amount": round(state.amount, 2), "message": _message(state, status, facts)}
        if not usable:
            verdicts.append(Verdict(labels, Condition.NODATA, None, details))
            continue
        value = None if state.value is None else state.value / status.amount
        verdicts.append(Verdict(labels, _condition(state, params.clear), value, details))
    problem = Condition.FIRE if status.problems else Condition.CLEAR
    details = {**facts, "message": "the budget cannot be evaluated: " + (facts["problems"] or "no problem")}
    verdicts.append(Verdict({"spend": "unknown"}, problem, None, details))
    return Evaluation(verdicts)


def promql(params: BudgetParams, project: str) -> str | None:
    """Over /metrics: the threshold gauges. The hysteresis (`clear`) and the `spend="unknown"`
    alert are mlmon's own."""
    if not params.actual and not params.forecast:
        return None
    matchers = [project] if project else []
    if not params.actual:
        matchers.append('spend="forecast"')
    elif not params.forecast:
        matchers.append('spend="actual"')
    selector = f"{{{','.join(matchers)}}}" if matchers else ""
    return f"mlmon_spend_budget_threshold_crossed{selector} == 1"


KIND = RuleKind(
    name="budget",
    params=BudgetParams,
    evaluate=evaluate,
    summary="{{ project.name }}: {{ details.message }}",
    extras=(SPEND,),
    promql=promql,
    template_vars=(
        "currency",
        "budget",
        "budget_text",
        "spent",
        "spent_text",
        "percent_of_budget",
        "period",
        "period_kind",
        "period_start",
        "period_end",
        "resets_at",
        "days_left",
        "forecast",
        "forecast_lower",
        "forecast_upper",
        "forecast_confidence",
        "forecast_seasonality",
        "forecast_text",
        "data_through",
        "sources",
        "problems",
        "threshold_amount",
        "message",
    ),
)
