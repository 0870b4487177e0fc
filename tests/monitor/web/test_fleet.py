"""The fleet header and sparklines against the scorecards of the month-long world, the pure
verdict rules, and the units and moments the pages print."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.stack.fleet_counts import open_by_day
from monitor.views import charts
from monitor.views.fleet import fleet_header, spend_summary, target_summary
from monitor.views.scorecard import build_scorecards
from monitor.views.source_health import SourceHealth, State
from monitor.views.verdicts import Status, Verdict, overall, question_verdict
from monitor.web.render import moment, span, with_unit
from tests.monitor.web.world import NOW, World


def test_fleet_header_agrees_with_the_scorecards(world: World) -> None:
    runtime = world.runtime
    cards = build_scorecards(runtime.store, runtime.config, NOW, runtime.config.projects)
    header = fleet_header(runtime.store, cards, NOW)
    critical = sum(c.stack.open.get("critical", 0) for c in cards)
    high = sum(c.stack.open.get("high", 0) for c in cards)
    assert header.findings_now == (critical, high) and high > 0
    days = open_by_day(runtime.store.engine, NOW)
    # the world's inventories were first read at its start, 30 days before NOW: the days before are
    # unknown, not zero, and left out
    assert days[-1][0] == NOW.date() and days[0][0] >= (NOW - timedelta(days=31)).date() and len(days) <= 32
    budgets = [c for c in cards if c.spend.budget is not None]
    spent = sum(c.spend.spent or 0.0 for c in budgets)
    assert header.spend_lines[0].startswith(f"{spent:,.0f} of {sum(c.spend.budget or 0 for c in budgets):,.0f} USD")
    assert header.target_counts == {"below target": 1, "met": 0, "no value": 0, "no target": 3}
    assert 'data-name="critical"' in header.findings and 'data-name="high"' in header.findings


def test_budgets_without_data_are_counted_apart_not_as_zero(world: World) -> None:
    runtime = world.runtime
    cards = build_scorecards(runtime.store, runtime.config, NOW, runtime.config.projects)
    with_budget = [c for c in cards if c.spend.budget is not None]
    blind = [replace(c, spend=replace(c.spend, spent=None)) for c in with_budget]
    _, lines = spend_summary(blind)
    assert lines == [f"{len(blind)} budgets without spend data this period (not counted)"]
    _, counts = target_summary(blind)
    assert counts == {"below target": 1, "met": 0, "no value": 0, "no target": 1}


def test_sparklines_leave_gaps_for_missing_days_and_say_no_data() -> None:
    svg = charts.sparkline("accuracy", [0.9, None, 0.8, 0.85], reference=0.82)
    path = re.search(r'class="spark-line" d="([^"]+)"', svg)
    assert path is not None and path.group(1).count("M") == 2  # the gap starts a new stroke
    assert 'class="spark-ref"' in svg and 'data-points="3"' in svg
    empty = charts.sparkline("spend", [None, None], bars=True)
    assert "no data" in empty and "spark-bar" not in empty
    bars = charts.sparkline("spend", [0.0, None, 5.0], bars=True)
    assert bars.count('class="spark-bar"') == 2


def health(state: State) -> SourceHealth:
    at = datetime(2026, 11, 20, 10, 42, 7, tzinfo=UTC)
    return SourceHealth(
        "p", "bill", "focus", "spend", state, None, at, "no FOCUS file matches /srv/x", 3, at, None, None
    )


@pytest.mark.parametrize(
    ("data", "state", "want"),
    [
        (Status.OK, State.OK, Status.OK),
        (Status.OK, State.FAILING, Status.WARN),
        (Status.NONE, State.FAILING, Status.WARN),
        (Status.BAD, State.FAILING, Status.BAD),
        (Status.OK, State.STALE, Status.WARN),
        (Status.OK, State.NEVER, Status.NONE),
        (Status.NONE, State.NEVER, Status.NONE),
        (Status.WARN, State.NEVER, Status.WARN),
    ],
)
def test_question_verdict_precedence(data: Status, state: State, want: Status) -> None:
    verdict = question_verdict(data, [health(state)], "p")
    assert verdict.status is want
    if state is State.FAILING:
        assert verdict.reasons == ("bill source failing since 2026-11-20 10:42:07 UTC: no FOCUS file matches /srv/x",)


def test_overall_puts_not_known_before_fine() -> None:
    ok, unknown = Verdict(Status.OK), Verdict(Status.NONE, ("evaluator source never run",))
    assert overall({"quality": ok, "spend": Verdict(Status.NONE)}, Status.OK) is Status.OK  # not asked
    assert overall({"quality": ok, "spend": unknown}, Status.OK) is Status.NONE
    assert overall({"quality": Verdict(Status.NONE)}, Status.OK) is Status.NONE  # alerts alone are not "fine"
    assert overall({"quality": unknown}, Status.WARN) is Status.WARN
    assert overall({"quality": ok}, Status.BAD) is Status.BAD


def test_values_carry_units() -> None:
    assert with_unit(10_510_000.0, "torch_vulnerability_age_seconds") == "121 d 15 h"
    assert with_unit(0.874, "accuracy") == "87.4%"
    assert with_unit(1234.5, "spend_forecast_usd") == "1,234 USD"
    assert with_unit(12.5, "budget_spent", "EUR") == "12.50 EUR"
    assert with_unit(10_510_000.0, "open_findings") == "10,510,000"
    assert with_unit(None, "accuracy") == "—"
    assert span(3725) == "1 h 2 min" and span(42) == "42 s"


def test_moments_are_to_the_second_with_a_relative_form() -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    html = str(moment(now - timedelta(minutes=75, seconds=5), now))
    assert '<time datetime="2026-11-20T10:44:55Z" data-local="1">2026-11-20 10:44:55 UTC</time>' in html
    assert "(1 h ago)" in html
    assert "never" in str(moment(None, now))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (10, "just now"),
        (44, "just now"),
        (45, "45 s ago"),
        (59, "59 s ago"),
        (-50, "in 50 s"),
        (60, "1 min ago"),
        (7200, "2 h ago"),
        (-86400 * 3, "in 3 d"),
    ],
)
def test_every_span_has_a_relative_form(seconds: int, text: str) -> None:
    from monitor.web.render import ago

    assert ago(NOW - timedelta(seconds=seconds), NOW) == text
