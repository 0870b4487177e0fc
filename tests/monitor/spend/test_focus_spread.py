"""Multi-day FOCUS charges are spread over their local days; purchases are kept apart and a
budget may leave them out. Expected values are computed independently here, hour by hour with
zoneinfo, never taken from the reader."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import monitor.config.models  # noqa: F401  (loads the config package before the spend modules)
from collectors.spend.focus_params import FocusParams
from collectors.spend.focus_reader import FileAggregate, FocusFileError, read_focus_file
from monitor.spend.ledger import SourceDays
from monitor.spend.series import ATTRIBUTED, BASIS, SCOPE, currency_of_metric, zone

HEADER = (
    "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ChargeFrequency,Tags"
)


def write(path: Path, rows: list[tuple[float, float, str, str, str, str]]) -> Path:
    lines = [HEADER]
    for billed, effective, start, end, category, frequency in rows:
        tags = '"{""ml-project"": ""vision""}"'
        lines.append(f"{billed},{effective},USD,{start},{end},{category},{frequency},{tags}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read(path: Path, **extra: object) -> FileAggregate:
    params = FocusParams.model_validate({"path": "unused", "attribution": [{"tag": "ml-project"}], **extra})
    return read_focus_file(path, params, zone(params.timezone))


def per_day(aggregate: FileAggregate, basis: str = "billed") -> dict[tuple[str, date], float]:
    """(scope, day) -> amount."""
    out: dict[tuple[str, date], float] = defaultdict(float)
    for (metric, labels), days in aggregate.totals.values.items():
        label = dict(labels)
        if currency_of_metric(metric) and label[BASIS] == basis and label[ATTRIBUTED] == "vision":
            for day, value in days.items():
                out[(label[SCOPE], day)] += value
    return dict(out)


def hours_by_local_day(start: datetime, end: datetime, tz: str) -> dict[date, float]:
    """Hours of [start, end) per local calendar day, counted one minute at a time (zones such as
    Asia/Kolkata are half an hour off UTC)."""
    out: dict[date, float] = defaultdict(float)
    moment = start
    while moment < end:
        out[moment.astimezone(ZoneInfo(tz)).date()] += 1 / 60
        moment += timedelta(minutes=1)
    return dict(out)


def test_the_spec_one_year_upfront_commitment_is_spread_over_365_days_as_a_purchase(tmp_path: Path) -> None:
    """FOCUS 1.2 appendix, commitment discounts: All Upfront, BilledCost 8760 over 2023-01-01..2024-01-01."""
    path = write(
        tmp_path / "upfront.csv",
        [(8760.0, 0.0, "2023-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "Purchase", "One-Time")],
    )
    spread = per_day(read(path))
    assert {scope for scope, _ in spread} == {"purchase"}
    assert len(spread) == 365 and all(math.isclose(v, 24.0, abs_tol=1e-9) for v in spread.values())
    assert math.isclose(math.fsum(spread.values()), 8760.0, abs_tol=1e-6)
    whole = per_day(read(path, spread="start"))
    assert whole == {("purchase", date(2023, 1, 1)): 8760.0}


def test_a_daily_utc_row_west_of_utc_is_split_by_the_hours_each_local_day_holds(tmp_path: Path) -> None:
    path = write(
        tmp_path / "daily.csv", [(24.0, 24.0, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "Usage", "Usage-Based")]
    )
    got = per_day(read(path, timezone="America/Santiago"))
    hours = hours_by_local_day(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC), "America/Santiago")
    assert hours == pytest.approx({date(2023, 12, 31): 3, date(2024, 1, 1): 21})
    assert got == pytest.approx({("other", d): 24.0 * h / 24 for d, h in hours.items()}, abs=1e-6)


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/Santiago", "Asia/Kolkata", "UTC"])
def test_spread_matches_an_hour_by_hour_count_across_dst_and_sums_exactly(tmp_path: Path, tz: str) -> None:
    charges = [
        (
            48.0,
            40.0,
            datetime(2024, 3, 30, 12, tzinfo=UTC),
            datetime(2024, 4, 1, 12, tzinfo=UTC),
        ),  # Berlin springs forward
        (25.0, 25.0, datetime(2024, 10, 26, 22, tzinfo=UTC), datetime(2024, 10, 27, 23, tzinfo=UTC)),  # falls back
        (10.0, 9.0, datetime(2024, 9, 7, 1, tzinfo=UTC), datetime(2024, 9, 10, 1, tzinfo=UTC)),  # Chile's DST starts
        (7.0, 7.0, datetime(2024, 5, 1, 6, tzinfo=UTC), datetime(2024, 5, 1, 7, tzinfo=UTC)),  # one hour
    ]
    rows = [
        (b, e, f"{s:%Y-%m-%dT%H:%M:%SZ}", f"{t:%Y-%m-%dT%H:%M:%SZ}", "Usage", "Usage-Based") for b, e, s, t in charges
    ]
    got = per_day(read(write(tmp_path / "dst.csv", rows), timezone=tz))
    expected: dict[tuple[str, date], float] = defaultdict(float)
    for billed, _effective, start, end in charges:
        hours = hours_by_local_day(start, end, tz)
        total = sum(hours.values())
        for day, h in hours.items():
            expected[("other", day)] += billed * h / total
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert math.isclose(got[key], value, abs_tol=2e-6), key
    assert math.isclose(math.fsum(got.values()), sum(c[0] for c in charges), abs_tol=1e-9)


def test_a_period_that_ends_before_it_starts_is_refused_naming_row_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "reversed.csv",
        [
            (1.0, 1.0, "2024-09-01T00:00:00Z", "2024-09-01T01:00:00Z", "Usage", "Usage-Based"),
            (1.0, 1.0, "2024-09-02T00:00:00Z", "2024-09-01T00:00:00Z", "Usage", "Usage-Based"),
        ],
    )
    with pytest.raises(FocusFileError) as caught:
        read(path)
    assert (caught.value.row, caught.value.column) == (2, "ChargePeriodEnd")
    assert "ends before it starts: ChargePeriodStart 2024-09-02T00:00:00Z, ChargePeriodEnd 2024-09-01T00:00:00Z" in str(
        caught.value
    )


def test_a_file_without_tags_is_attributed_by_a_column_rule(tmp_path: Path) -> None:
    """FOCUS makes Tags conditional: a provider without tags writes no such column."""
    path = tmp_path / "untagged.csv"
    path.write_text(
        "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,SubAccountId\n"
        "5,5,USD,2024-09-01T00:00:00Z,2024-09-01T01:00:00Z,51738928782\n"
        "2,2,USD,2024-09-01T00:00:00Z,2024-09-01T01:00:00Z,other\n",
        encoding="utf-8",
    )
    params = FocusParams.model_validate(
        {
            "path": "unused",
            "attribution": [
                {"tag": "ml-project"},
                {"column": "SubAccountId", "equals": "51738928782", "project": "vision"},
            ],
        }
    )
    aggregate = read_focus_file(path, params, zone("UTC"))
    assert aggregate.projects == {"vision"} and aggregate.unattributed_rows == 1
    assert per_day(aggregate) == {("other", date(2024, 9, 1)): 5.0}


def test_a_budget_may_exclude_purchases_and_credits(tmp_path: Path) -> None:
    from monitor.spend.sources import SpendSource

    source = SourceDays(SpendSource("finops", "aws", "focus", "UTC", None), "USD", None)
    day = date(2024, 9, 1)
    source.spend[("billed", "other")] = {day: 100.0}
    source.spend[("billed", "purchase")] = {day: 8760.0}
    source.spend[("billed", "credit")] = {day: -10.0}
    assert source.amounts("billed", "all") == {day: 8850.0}
    assert source.amounts("billed", "all", ["purchase"]) == {day: 90.0}
    assert source.amounts("billed", "all", ["purchase", "credit"]) == {day: 100.0}
