"""A whole budget period on a frozen clock: a daily FOCUS export lands every morning, the real
source reads it, the alert engine evaluates the `budget` rule, the dispatcher notifies the owners.

The budget is $1,000 a month in America/Los_Angeles; the project spends $10 a day in October and
$40 a day in November (2026: US daylight saving time ends on Nov 1, a 25-hour day). Each morning
at 09:00 local time the month's export file is rewritten (as AWS overwrites its month-to-date
files): every day so far in full and today's first 9 hours, as bills lag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts.dispatcher import Dispatcher
from alerts.engine import AlertEngine
from alerts.kinds import REGISTRY
from alerts.model import AlertState
from alerts.store import AlertStore, OutboxStore
from monitor.core.clock import FrozenClock
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.spend.providers import bind
from tests.conftest import RuntimeFactory
from tests.monitor.spend.focus_data import Charge, require_pyarrow, write_focus

LA = ZoneInfo("America/Los_Angeles")
UTC = ZoneInfo("UTC")


def config(exports: Path) -> str:
    return f"""
projects:
  - id: finops
    owners: [{{name: Fin, email: fin@example.com}}]
    sources:
      - name: aws
        kind: focus
        interval: 1h
        params:
          path: {exports}
          timezone: America/Los_Angeles
          attribution: [{{tag: ml-project}}]
  - id: churn
    name: Churn classifier
    owners: [{{name: Ada, email: ada@example.com}}]
    spend:
      budget:
        amount: 1000
        timezone: America/Los_Angeles
        forecast: {{lookback: 14d, min_days: 5, confidence: 0.8}}
rules:
  - name: budget
    kind: budget
    labels: {{severity: warning}}
receivers:
  - name: owners
    webhook: {{url: "http://127.0.0.1:9/hook"}}
route:
  receiver: owners
  group_by: [project, alertname]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 24h
"""


def daily_amount(day: date) -> float:
    return 10.0 if day.month == 10 else 40.0


def local_hours(day: date) -> list[datetime]:
    """The UTC starts of the local hours of `day` (23, 24 or 25 of them)."""
    start = datetime.combine(day, datetime.min.time(), LA).astimezone(UTC)
    stop = datetime.combine(day + timedelta(days=1), datetime.min.time(), LA).astimezone(UTC)
    hours = int((stop - start).total_seconds() // 3600)
    return [start + timedelta(hours=i) for i in range(hours)]


def export_for(morning: date, exports: Path, since: date) -> None:
    """The month-to-date files at 09:00 on `morning`: full days, then today's first nine hours."""
    months: dict[str, list[Charge]] = {}
    day = since
    while day <= morning:
        hours = local_hours(day)
        per_hour = daily_amount(day) / len(hours)
        count = 9 if day == morning else len(hours)
        months.setdefault(f"{day:%Y-%m}", []).extend(Charge(start, per_hour, "churn") for start in hours[:count])
        day += timedelta(days=1)
    for month, charges in months.items():
        if month >= f"{morning - timedelta(days=1):%Y-%m}":  # earlier months are final and stay as they are
            write_focus(exports / f"{month}.csv", charges)


@dataclass
class Period:
    runtime: Runtime
    clock: FrozenClock
    exports: Path
    engine: AlertEngine
    dispatcher: Dispatcher
    runner: SourceRunner
    fired: dict[tuple[str, str], date] = field(default_factory=dict)
    resolved: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def morning(self, day: date) -> None:
        self.clock.set(datetime.combine(day, datetime.min.time().replace(hour=9), LA).astimezone(UTC))
        export_for(day, self.exports, date(2026, 10, 18))
        [plan] = self.runtime.plans
        record = self.runner.run(plan)
        assert record.ok, record.error
        self.evaluate()

    def evaluate(self) -> None:
        self.engine.evaluate()
        self.dispatcher.tick()
        for alert in AlertStore(self.runtime.store.engine).list():
            key = (alert.labels["spend"], alert.labels.get("threshold", ""))
            if alert.state is AlertState.FIRING and key not in self.fired:
                self.fired[key] = self.clock.now().astimezone(LA).date()
            if alert.state is AlertState.RESOLVED and key not in self.resolved:
                self.resolved[key] = self.clock.now()

    def alert(self, spend: str, threshold: str) -> object:
        return next(
            a
            for a in AlertStore(self.runtime.store.engine).list()
            if a.labels["spend"] == spend and a.labels.get("threshold") == threshold
        )


@pytest.fixture
def period(make_runtime: RuntimeFactory, db_url: str, tmp_path: Path) -> Period:
    exports = tmp_path / "exports"
    exports.mkdir()
    clock = FrozenClock(datetime(2026, 10, 1, 16, tzinfo=UTC))
    runtime = make_runtime(config(exports), database_url=db_url, clock=clock)
    engine = AlertEngine(runtime.store, clock, REGISTRY, lambda: runtime.config, bind(lambda: runtime.config))
    dispatcher = Dispatcher(runtime.store, clock, lambda: runtime.config, "http://mlmon.test")
    return Period(runtime, clock, exports, engine, dispatcher, SourceRunner(runtime.store, clock))


def test_a_month_of_spend_fires_each_threshold_on_its_day_and_resets_at_local_midnight(period: Period) -> None:
    day = date(2026, 10, 18)
    while day <= date(2026, 11, 30):
        period.morning(day)
        day += timedelta(days=1)

    # Actual spend on a November morning D at 09:00 is 40 x (D - 1) + 15:
    # 535 >= 500 first on the 14th, 935 >= 900 on the 24th, 1015 >= 1000 on the 26th.
    assert period.fired[("actual", "50%")] == date(2026, 11, 14)
    assert period.fired[("actual", "90%")] == date(2026, 11, 24)
    assert period.fired[("actual", "100%")] == date(2026, 11, 26)
    # The forecast sees it coming three weeks earlier. Spend stepped from 10 to 40 a day on Nov 1; on
    # Nov 4 three complete days are at the new level, the level-shift forecast takes it: 120 spent +
    # 27 days x 40 = 1,200 >= 1,000. (A trailing 14-day mean would lag until Nov 11: 1,029.) On Nov 3
    # two days at 40 are too few to trust: (12 x 10 + 2 x 40) / 14 a day gives 80 + 28 x 14.3 = 480.
    assert period.fired[("forecast", "100%")] == date(2026, 11, 4)
    assert ("unknown", "") not in period.fired

    full = period.alert("actual", "100%")
    assert full.state is AlertState.FIRING and full.value == pytest.approx(1175 / 1000)  # type: ignore[attr-defined]
    summary = full.annotations["summary"]  # type: ignore[attr-defined]
    assert summary.startswith(
        "Churn classifier: spent 1,175.00 USD of the 1,000.00 USD 2026-11 budget (118%, threshold 100%)"
    )
    assert "the period ends 2026-11-30, 0.6 days left; forecast 1," in summary and "(80% interval" in summary

    # 2026-12-01 05:00 UTC is still Nov 30 in Los Angeles: the November period and its alerts stand.
    period.clock.set(datetime(2026, 12, 1, 5, tzinfo=UTC))
    period.evaluate()
    assert period.alert("actual", "100%").state is AlertState.FIRING  # type: ignore[attr-defined]
    # 08:00 UTC is local midnight: a new period, nothing spent yet, the actual alerts resolve.
    period.clock.set(datetime(2026, 12, 1, 8, tzinfo=UTC))
    period.evaluate()
    for threshold in ("50%", "90%", "100%"):
        assert period.resolved[("actual", threshold)] == datetime(2026, 12, 1, 8, tzinfo=UTC)

    # The owners' receiver got the budget alerts with the numbers in the payload.
    sent = [item.payload["body"] for item in OutboxStore(period.runtime.store.engine).items()]
    firing = [a for body in sent for a in body["alerts"] if a["status"] == "firing"]
    assert {a["labels"]["threshold"] for a in firing if a["labels"]["spend"] == "actual"} == {"50%", "90%", "100%"}
    assert all(body["receiver"] == "owners" and body["mlmon"]["owners"][0]["name"] == "Ada" for body in sent)


def test_no_forecast_until_enough_days_and_the_status_says_why(period: Period) -> None:
    period.morning(date(2026, 10, 20))  # two complete days (Oct 18 and 19) so far
    from monitor.spend.report import days_needed, load

    now = period.clock.now()
    data = load(period.runtime.store, period.runtime.config, ["churn"], now, days_needed(period.runtime.config, now))
    status = data["churn"].budget(now)
    assert status is not None and not status.forecast.available
    assert status.forecast.reason == (
        "not enough data for a forecast: 2 complete days of spend in the lookback window, 5 needed"
    )
    assert ("forecast", "100%") not in period.fired


@pytest.fixture(autouse=True)
def _pyarrow() -> None:
    require_pyarrow()
