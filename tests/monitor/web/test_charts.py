"""The inline SVG charts (pure): well-formed, scaled to their data, escaped, empty when there is nothing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import pytest

from monitor.views.charts import (
    DAY_MS,
    BurnUp,
    HLine,
    Line,
    Marker,
    bar_chart,
    burn_up,
    day_ms,
    nice_ticks,
    time_chart,
    time_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    text = str(markup)  # a Markup's own replace() would escape the replacement
    return ET.fromstring(text.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def by_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if name in (e.get("class") or "").split()]


@pytest.mark.parametrize(("low", "high"), [(0.86, 0.96), (0.0, 3412.5), (-5.0, 5.0), (12.0, 12.0), (1e-6, 3e-6)])
def test_nice_ticks_cover_the_range_evenly(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and 3 <= len(ticks) <= 12
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1


def test_time_ticks_fall_on_midnights_and_stay_few() -> None:
    start = day_ms(date(2026, 10, 21)) + 12 * 3_600_000
    ticks = time_ticks(start, start + 30 * DAY_MS)
    assert 3 <= len(ticks) <= 8 and all(t % DAY_MS == 0 for t in ticks) and ticks[0] >= start


def test_a_time_chart_draws_lines_references_markers_inside_its_window() -> None:
    start, end = 0, 10 * DAY_MS
    points = [(i * DAY_MS, 0.9 + i / 100) for i in range(11)]
    svg = time_chart(
        "accuracy <last 10 days>",
        [Line("accuracy", points), Line("accuracy_baseline", [(0, 0.93), (end, 0.93)], "baseline", step=True)],
        start_ms=start,
        end_ms=end,
        hlines=[HLine(0.92, "target >= 0.92", "target")],
        markers=[Marker(3 * DAY_MS, "model 7 -> 8 <b>", "version"), Marker(end + DAY_MS, "later", "drift")],
    )
    root = parse(svg)
    assert root.get("aria-label") == "accuracy <last 10 days>"  # escaped in the markup, intact once parsed
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    [series] = by_class(root, "line-series")
    assert series.get("data-points") == "11"
    path = series.find(f"{SVG}path")
    assert path is not None and path.get("d", "").count("L") == 10
    [baseline] = by_class(root, "line-baseline")
    step = baseline.find(f"{SVG}path")
    assert step is not None and "H" in step.get("d", "")
    [target] = by_class(root, "hline-target")
    assert target.get("data-value") == "0.92"
    assert len(by_class(root, "marker-version")) == 1 and not by_class(root, "marker-drift")  # outside: left out
    # the newest, highest point is drawn above (smaller y than) the first one
    coords = path.get("d", "").replace("M", " ").replace("L", " ").split()
    first_y, last_y = float(coords[0].split(",")[1]), float(coords[-1].split(",")[1])
    assert last_y < first_y


def test_a_chart_without_data_says_so() -> None:
    root = parse(time_chart("accuracy", [Line("accuracy", [])], start_ms=0, end_ms=DAY_MS))
    assert "chart-empty" in (root.get("class") or "")
    assert "no data in this period" in "".join(root.itertext())
    assert "no data" in "".join(parse(bar_chart("efficiency", [("Nov 1", None)])).itertext())


def test_the_burn_up_accumulates_and_fans_the_forecast_out_to_the_period_end() -> None:
    chart = BurnUp(
        first=date(2026, 11, 1),
        last=date(2026, 11, 30),
        daily=[(date(2026, 11, d), 100.0) for d in range(1, 21)],
        budget=3000.0,
        currency="USD",
        horizon=date(2026, 11, 20),
        spent_complete=1900.0,
        forecast=(2700.0, 2900.0, 3100.0),
        thresholds=[(1500.0, "50% (actual)")],
    )
    root = parse(burn_up(chart, "Spend in 2026-11"))
    [actual] = by_class(root, "line-actual")
    assert actual.get("data-points") == "21"  # the period's start at 0, then one point per day
    [budget] = by_class(root, "hline-budget")
    assert budget.get("data-value") == "3000"
    assert len(by_class(root, "hline-threshold")) == 1
    [band] = by_class(root, "band-forecast")
    corners = [tuple(map(float, p.split(","))) for p in (band.get("points") or "").split()]
    assert len(corners) == 4
    (x0, y0), (x1, y_upper), (x2, y_lower), (x3, y3) = corners
    assert x0 == x3 and y0 == y3  # the band starts at the last complete day's total
    assert x1 == x2 > x0 and y_upper < y_lower  # and opens to [lower, upper] at the period's end
    assert len(by_class(root, "line-forecast")) == 1


def test_bars_scale_to_their_maximum_and_skip_unknown_days() -> None:
    root = parse(bar_chart("GPU efficiency", [("a", 0.5), ("b", None), ("c", 1.0)], y_max=1.0))
    bars = by_class(root, "bar")
    assert [b.get("data-label") for b in bars] == ["a", "c"]
    half, full = (float(b.get("height") or 0) for b in bars)
    assert half == pytest.approx(full / 2, rel=0.01)
