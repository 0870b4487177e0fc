"""`/metrics` families of the spend family, read from the store at scrape time.

Per project (currency in the name, as for stored spend): the budget and the period's spend,
the share used, the forecast and its interval, each threshold crossed or not, the period's
bounds, fixed costs and TCO so far, and spend / TCO per accuracy point and per 1,000
predictions. Per spend source: spend no rule attributed this calendar month.
The stored daily series themselves are on /metrics too (`mlmon_spend_usd{...}`, latest day).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily, Metric

from monitor.config.models import MlmonConfig
from monitor.core.clock import SystemClock
from monitor.spend.ledger import source_states, totals_by_attribution
from monitor.spend.report import ProjectSpend, current_tco, days_needed, load
from monitor.spend.series import UNATTRIBUTED, local_day, zone
from monitor.spend.sources import spend_sources
from monitor.store.store import Store

PROJECT = ["project"]


class _Families:
    """Gauge families created on first use, in a stable order."""

    def __init__(self) -> None:
        self.families: dict[str, GaugeMetricFamily] = {}

    def add(self, name: str, help_text: str, labels: list[str], values: list[str], value: float) -> None:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = GaugeMetricFamily(name, help_text, labels=labels)
        family.add_metric(values, value)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.families[name] for name in sorted(self.families))


def families(store: Store, config: MlmonConfig) -> Iterable[Metric]:
    sources = spend_sources(config)
    budgeted = [p.id for p in config.projects if p.spend.budget is not None or p.spend.fixed_costs or sources]
    if not budgeted:
        return []
    now = SystemClock().now()
    out = _Families()
    data = load(store, config, budgeted, now, days_needed(config, now))
    for project_id in budgeted:
        _project(out, store, data[project_id], now)
    _unattributed(out, store, config, now)
    return list(out)


def _project(out: _Families, store: Store, data: ProjectSpend, now: datetime) -> None:
    c = data.currency.lower()
    p = [data.project]
    status = data.budget(now)
    if status is not None:
        out.add(f"mlmon_spend_budget_{c}", "Budget of the project for its period", PROJECT, p, status.amount)
        out.add(
            f"mlmon_spend_period_{c}",
            "Spend counted against the budget this period (the day being billed included)",
            PROJECT,
            p,
            status.spent,
        )
        out.add("mlmon_spend_budget_used_ratio", "Spend this period / budget", PROJECT, p, status.used)
        out.add(
            "mlmon_spend_budget_problems",
            "Reasons the budget cannot be evaluated (e.g. a currency mismatch)",
            PROJECT,
            p,
            float(len(status.problems)),
        )
        out.add(
            "mlmon_spend_period_start_timestamp_seconds",
            "When the budget period began",
            PROJECT,
            p,
            status.period.start.timestamp(),
        )
        out.add(
            "mlmon_spend_period_end_timestamp_seconds",
            "When the budget period resets",
            PROJECT,
            p,
            status.period.stop.timestamp(),
        )
        f = status.forecast
        out.add(
            "mlmon_spend_forecast_available",
            "1 when there is enough data for a period-end forecast",
            PROJECT,
            p,
            1.0 if f.available else 0.0,
        )
        if f.available and f.point is not None and f.lower is not None and f.upper is not None:
            out.add(f"mlmon_spend_forecast_{c}", "Forecast spend at the end of the budget period", PROJECT, p, f.point)
            out.add(
                f"mlmon_spend_forecast_lower_{c}",
                "Lower bound of the forecast's prediction interval",
                PROJECT,
                p,
                f.lower,
            )
            out.add(
                f"mlmon_spend_forecast_upper_{c}",
                "Upper bound of the forecast's prediction interval",
                PROJECT,
                p,
                f.upper,
            )
        for state in status.thresholds:
            out.add(
                "mlmon_spend_budget_threshold_crossed",
                "1 when a budget threshold is reached (actual or forecast)",
                ["project", "spend", "threshold"],
                [data.project, state.basis, state.label],
                1.0 if state.crossed else 0.0,
            )
    row = current_tco(store, data, now)
    if status is None and not row.spend and not row.fixed:
        return  # nothing to say about a project without budget, fixed costs or spend
    out.add(
        f"mlmon_spend_fixed_{c}", "Fixed costs (people, licences, storage) of the period so far", PROJECT, p, row.fixed
    )
    out.add(
        f"mlmon_spend_tco_{c}",
        "Total cost of ownership of the period so far: measured spend plus fixed costs",
        PROJECT,
        p,
        row.tco,
    )
    for amount, prefix, what in ((row.spend, "mlmon_spend", "spend"), (row.tco, "mlmon_spend_tco", "TCO")):
        per_point = row.per_point(amount)
        if per_point is not None:
            out.add(
                f"{prefix}_per_accuracy_point_{c}",
                f"This period's {what} per accuracy point (0.87 = 87 points)",
                PROJECT,
                p,
                per_point,
            )
        per_thousand = row.per_thousand(amount)
        if per_thousand is not None:
            out.add(
                f"{prefix}_per_thousand_predictions_{c}",
                f"This period's {what} per 1,000 predictions",
                PROJECT,
                p,
                per_thousand,
            )


def _unattributed(out: _Families, store: Store, config: MlmonConfig, now: datetime) -> None:
    sources = spend_sources(config)
    states = source_states(store, sources)
    for source in sources:
        state = states[source.ref]
        if state.currency is None:
            continue
        today = local_day(now, zone(source.timezone))
        first = today.replace(day=1)
        totals = totals_by_attribution(
            store, source, state.currency, first, today + timedelta(days=1), raw_retention=config.retention.raw, now=now
        )
        amount, _rows = totals.get(UNATTRIBUTED, (0.0, None))
        out.add(
            f"mlmon_spend_unattributed_{state.currency.lower()}",
            "Spend of a source that no attribution rule assigned to a project, this calendar month",
            ["project", "source"],
            [source.project, source.name],
            amount,
        )
