"""What the API and the CLI show: the spend family's objects as response models."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from monitor.config.models import MlmonConfig
from monitor.spend.budget import BudgetStatus
from monitor.spend.config import BudgetConfig
from monitor.spend.ledger import source_states, totals_by_attribution
from monitor.spend.report import ProjectSpend, TcoReport
from monitor.spend.schemas import (
    AttributionOut,
    BudgetOut,
    DailyOut,
    ForecastOut,
    GpuDayOut,
    PeriodOut,
    ProjectDetailOut,
    ProjectSpendOut,
    SpendSourceOut,
    TcoOut,
    TcoRowOut,
    ThresholdOut,
)
from monitor.spend.series import RESERVED_ATTRIBUTIONS, UNATTRIBUTED
from monitor.spend.sources import spend_sources
from monitor.spend.tco import TcoRow
from monitor.store.store import Store


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def budget_out(status: BudgetStatus, budget: BudgetConfig) -> BudgetOut:
    f = status.forecast
    p = status.period
    return BudgetOut(
        amount=status.amount,
        currency=status.currency,
        period=PeriodOut(
            kind=p.kind.value,
            label=p.label,
            first_day=p.first,
            last_day=p.last,
            starts_at=p.start,
            resets_at=p.stop,
            timezone=budget.timezone,
        ),
        spent=round(status.spent, 6),
        spent_complete_days=round(status.spent_complete, 6),
        used=round(status.used, 6),
        data_through=status.horizon,
        days_left=round(status.days_left, 3),
        by_source={k: round(v, 6) for k, v in status.by_source.items()},
        forecast=ForecastOut(
            available=f.available,
            reason=f.reason,
            point=_round(f.point),
            lower=_round(f.lower),
            upper=_round(f.upper),
            confidence=f.confidence,
            days_used=f.days_used,
            daily_mean=_round(f.daily_mean),
            remaining_days=f.remaining_days,
            method=f.method,
            seasonality=f.seasonality,
            seasonality_p=f.seasonality_p,
        ),
        thresholds=[
            ThresholdOut(
                spend=t.basis, threshold=t.label, amount=round(t.amount, 6), value=_round(t.value), crossed=t.crossed
            )
            for t in status.thresholds
        ],
        problems=list(status.problems),
        waiting=list(status.waiting),
        cost=budget.cost,
        scope=budget.scope,
    )


def project_out(data: ProjectSpend, now: datetime) -> ProjectSpendOut:
    status = data.budget(now)
    budget = data.settings.budget
    return ProjectSpendOut(
        project=data.project,
        currency=data.currency,
        budget=budget_out(status, budget) if status is not None and budget is not None else None,
        counted_sources=data.counted,
        problems=list(data.problems),
    )


def detail_out(data: ProjectSpend, now: datetime, first: date, last: date) -> ProjectDetailOut:
    summary = project_out(data, now)
    daily: list[DailyOut] = []
    gpu: list[GpuDayOut] = []
    for ref, source in sorted(data.sources.items()):
        for (basis, scope), per_day in sorted(source.spend.items()):
            daily.extend(
                DailyOut(day=d, source=ref, basis=basis, scope=scope, amount=round(v, 6))
                for d, v in sorted(per_day.items())
                if first <= d <= last
            )
        for day, seconds in sorted(source.gpu_usage.items()):
            if first <= day <= last:
                busy = source.gpu_busy.get(day)
                gpu.append(
                    GpuDayOut(
                        day=day,
                        source=ref,
                        gpu_hours=round(seconds / 3600, 6),
                        busy_hours=_round(None if busy is None else busy / 3600),
                        efficiency=_round(busy / seconds if busy is not None and seconds else None),
                    )
                )
    return ProjectDetailOut(**summary.model_dump(), daily=daily, gpu=gpu)


def _tco_row(row: TcoRow) -> TcoRowOut:
    return TcoRowOut(
        period=row.period.label,
        first_day=row.period.first,
        last_day=row.period.last,
        partial=row.partial,
        elapsed=round(row.elapsed, 6),
        spend=round(row.spend, 6),
        gpu_spend=round(row.gpu_spend, 6),
        fixed=round(row.fixed, 6),
        tco=round(row.tco, 6),
        accuracy=_round(row.accuracy),
        accuracy_points=_round(row.accuracy_points),
        predictions=_round(row.predictions),
        spend_per_accuracy_point=_round(row.per_point(row.spend)),
        tco_per_accuracy_point=_round(row.per_point(row.tco)),
        spend_per_1000_predictions=_round(row.per_thousand(row.spend)),
        tco_per_1000_predictions=_round(row.per_thousand(row.tco)),
    )


def tco_out(report: TcoReport) -> TcoOut:
    rows = [_tco_row(row) for row in report.rows]
    return TcoOut(
        project=report.project,
        currency=report.currency,
        fixed_monthly=report.fixed_monthly,
        sources=report.counted,
        periods=rows,
        problems=report.problems,
    )


def sources_out(store: Store, config: MlmonConfig, now: datetime, days: int) -> list[SpendSourceOut]:
    """Each spend source, its state, and what it attributed over the last `days` days."""
    sources = spend_sources(config)
    states = source_states(store, sources)
    statuses = {(s.project, s.source): s for s in store.sources.statuses()}
    ids = config.project_ids
    last = now.date() + timedelta(days=1)
    first = now.date() - timedelta(days=days)
    out = []
    for source in sources:
        state = states[source.ref]
        status = statuses.get((source.project, source.name))
        totals = totals_by_attribution(
            store, source, state.currency, first, last, raw_retention=config.retention.raw, now=now
        )
        attribution = [
            AttributionOut(attributed_project=name, configured=name in ids, amount=round(amount, 6), rows=_round(rows))
            for name, (amount, rows) in sorted(totals.items())
            if name not in RESERVED_ATTRIBUTIONS
        ]
        files = None
        if source.kind == "focus" and status is not None and status.checkpoint:
            files = len(status.checkpoint.get("files", {}))
        out.append(
            SpendSourceOut(
                project=source.project,
                name=source.name,
                kind=source.kind,
                timezone=source.timezone,
                currency=state.currency,
                data_through=state.horizon,
                up=status.up if status else None,
                last_success_at=status.last_success_at if status else None,
                last_error=status.last_error if status else None,
                files=files,
                attribution=attribution,
                unattributed=round(totals.get(UNATTRIBUTED, (0.0, None))[0], 6),
            )
        )
    return out
