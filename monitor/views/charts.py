"""Charts as inline SVG, rendered on the server. Pure: data in, markup out.

Three shapes are all the pages need, so a charting library (and the JavaScript it would bring)
is not worth it:

- `time_chart`: lines over time, with horizontal reference lines (a baseline, a budget),
  vertical markers (events, version changes, drift) and an optional band (a forecast interval);
- `burn_up`: cumulative spend in a budget period against the budget, with the forecast band
  from the last complete day to the period's end (a `time_chart`);
- `bar_chart`: one bar per label (GPU efficiency per day).

Every element carries a class and `data-` attributes, so the stylesheet colours it and tests can
read the DOM; every chart has a `<title>` and an `aria-label`. Colours live in the stylesheet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from markupsafe import Markup, escape

WIDTH = 760
HEIGHT = 230
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 16, 14, 30
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_TIME_STEPS_MS = (HOUR_MS, 3 * HOUR_MS, 6 * HOUR_MS, 12 * HOUR_MS, DAY_MS, 2 * DAY_MS, 7 * DAY_MS, 14 * DAY_MS,
                  28 * DAY_MS, 91 * DAY_MS)  # fmt: skip

Formatter = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Line:
    """A series of (epoch ms, value) points, drawn as a polyline (a step line with `step`)."""

    name: str
    points: Sequence[tuple[int, float]]
    kind: str = "series"
    """CSS class suffix: series, baseline, actual, forecast ..."""
    step: bool = False
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class HLine:
    """A horizontal reference line (a fixed baseline, a budget, a target)."""

    value: float
    label: str
    kind: str = "reference"


@dataclass(frozen=True, slots=True)
class Marker:
    """A vertical marker at a moment: an event, a version change, drift."""

    at_ms: int
    label: str
    kind: str = "event"


@dataclass(frozen=True, slots=True)
class Band:
    """A filled area between a lower and an upper edge (same x values, in order)."""

    lower: Sequence[tuple[int, float]]
    upper: Sequence[tuple[int, float]]
    label: str
    kind: str = "forecast"


@dataclass(frozen=True)
class Frame:
    """Maps data to the drawing area."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: int = WIDTH
    height: int = HEIGHT
    inner: tuple[float, float, float, float] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "inner", (PAD_LEFT, PAD_TOP, self.width - PAD_LEFT - PAD_RIGHT, self.height - PAD_TOP - PAD_BOTTOM)
        )

    def x(self, value: float) -> float:
        left, _, w, _ = self.inner
        span = self.x1 - self.x0 or 1.0
        return round(left + (value - self.x0) / span * w, 1)

    def y(self, value: float) -> float:
        _, top, _, h = self.inner
        span = self.y1 - self.y0 or 1.0
        return round(top + h - (value - self.y0) / span * h, 1)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks and ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def time_ticks(start_ms: int, end_ms: int, most: int = 8) -> list[int]:
    """Tick moments at whole hours or UTC midnights, at most `most` of them."""
    span = max(1, end_ms - start_ms)
    step = next((s for s in _TIME_STEPS_MS if span / s <= most), _TIME_STEPS_MS[-1])
    first = (start_ms // step + (start_ms % step > 0)) * step
    return list(range(first, end_ms + 1, step))


def time_label(ms: int, span_ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    if span_ms <= 2 * DAY_MS:
        return moment.strftime("%H:%M")
    return moment.strftime("%b %d").replace(" 0", " ")


def plain(value: float) -> str:
    """A compact number: 0.912, 12.5k, 3.1M."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:.4g}"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _attr(value: object) -> str:
    return str(escape(str(value)))


def _path(frame: Frame, points: Sequence[tuple[int, float]], step: bool) -> str:
    parts: list[str] = []
    previous_y: float | None = None
    for index, (x, y) in enumerate(points):
        px, py = frame.x(x), frame.y(y)
        if index == 0:
            parts.append(f"M{px},{py}")
        elif step and previous_y is not None:
            parts.append(f"H{px}V{py}")
        else:
            parts.append(f"L{px},{py}")
        previous_y = py
    return "".join(parts)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _empty(title: str, message: str, kind: str, width: int, height: int) -> Markup:
    return Markup(
        f'<svg class="chart chart-{_attr(kind)} chart-empty" viewBox="0 0 {width} {height // 3}" role="img" '
        f'aria-label="{_attr(title)}: {_attr(message)}"><title>{_attr(title)}</title>'
        f'<text class="empty" x="{width // 2}" y="{height // 6}" text-anchor="middle">{_attr(message)}</text></svg>'
    )


def time_chart(
    title: str,
    lines: Sequence[Line],
    *,
    start_ms: int,
    end_ms: int,
    hlines: Sequence[HLine] = (),
    markers: Sequence[Marker] = (),
    bands: Sequence[Band] = (),
    y_format: Formatter = plain,
    y_floor: float | None = None,
    kind: str = "time",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Markup:
    """Lines over [start, end] with reference lines, markers and bands; y fitted to all of them."""
    values = [y for line in lines for _, y in line.points]
    values += [h.value for h in hlines]
    values += [y for band in bands for _, y in (*band.lower, *band.upper)]
    values = [v for v in values if math.isfinite(v)]
    if not any(line.points for line in lines) and not bands:
        return _empty(title, "no data in this period", kind, width, height)
    low, high = min(values), max(values)
    if y_floor is not None:
        low = min(low, y_floor)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    if y_floor is None or low > y_floor:
        low -= pad
    high += pad
    ticks = nice_ticks(low, high)
    frame = Frame(start_ms, end_ms, ticks[0], ticks[-1], width, height)
    left, top, w, h = frame.inner
    out = [
        f'<svg class="chart chart-{_attr(kind)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_attr(title)}" preserveAspectRatio="xMidYMid meet"><title>{_attr(title)}</title>',
        f'<rect class="plot" x="{left}" y="{top}" width="{w}" height="{h}"/>',
        '<g class="axis axis-y">',
    ]
    for tick in ticks:
        y = frame.y(tick)
        out.append(
            f'<line class="grid" x1="{left}" x2="{left + w}" y1="{y}" y2="{y}"/>'
            f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{_attr(y_format(tick))}</text>'
        )
    out.append('</g><g class="axis axis-x">')
    span = end_ms - start_ms
    for tick_ms in time_ticks(start_ms, end_ms):
        x = frame.x(tick_ms)
        out.append(
            f'<line class="tick" x1="{x}" x2="{x}" y1="{top + h}" y2="{top + h + 4}"/>'
            f'<text x="{x}" y="{top + h + 17}" text-anchor="middle">{_attr(time_label(tick_ms, span))}</text>'
        )
    out.append("</g>")
    for band in bands:
        if not band.lower or not band.upper:
            continue
        edge = [f"{frame.x(x)},{frame.y(y)}" for x, y in band.upper]
        edge += [f"{frame.x(x)},{frame.y(y)}" for x, y in reversed(band.lower)]
        out.append(
            f'<polygon class="band band-{_attr(band.kind)}" data-name="{_attr(band.label)}" points="{" ".join(edge)}">'
            f"<title>{_attr(band.label)}</title></polygon>"
        )
    for ref in hlines:
        y = frame.y(ref.value)
        out.append(
            f'<g class="hline hline-{_attr(ref.kind)}" data-value="{ref.value:.6g}">'
            f'<line x1="{left}" x2="{left + w}" y1="{y}" y2="{y}"/>'
            f'<text x="{left + w - 4}" y="{y - 4}" text-anchor="end">{_attr(ref.label)}</text>'
            f"<title>{_attr(ref.label)}</title></g>"
        )
    for marker in markers:
        if not start_ms <= marker.at_ms <= end_ms:
            continue
        x = frame.x(marker.at_ms)
        out.append(
            f'<g class="marker marker-{_attr(marker.kind)}" data-at="{_iso(marker.at_ms)}">'
            f'<line x1="{x}" x2="{x}" y1="{top}" y2="{top + h}"/>'
            f'<circle cx="{x}" cy="{top + 4}" r="3.5"/><title>{_attr(marker.label)}</title></g>'
        )
    for line in lines:
        if not line.points:
            continue
        dashed = " dashed" if line.dashed else ""
        out.append(
            f'<g class="line line-{_attr(line.kind)}{dashed}" data-name="{_attr(line.name)}" '
            f'data-points="{len(line.points)}"><path d="{_path(frame, line.points, line.step)}"/>'
            f"<title>{_attr(line.name)}</title></g>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class BurnUp:
    """What a burn-up chart shows of one budget period (amounts in the budget's currency)."""

    first: date
    last: date
    daily: Sequence[tuple[date, float]]
    """Spend per day of the period so far (the day still being billed included)."""
    budget: float | None
    currency: str
    horizon: date | None = None
    """The day still being billed: complete days are before it."""
    spent_complete: float | None = None
    forecast: tuple[float, float, float] | None = None
    """(lower, point, upper) of the period's total."""
    thresholds: Sequence[tuple[float, str]] = ()


def burn_up(chart: BurnUp, title: str) -> Markup:
    """Cumulative spend by day against the budget line, with the forecast band to the period's end.

    Days are drawn at UTC midnights of their dates (a budget in another time zone shifts by hours,
    which a chart of a month does not show)."""
    start, end = day_ms(chart.first), day_ms(chart.last + timedelta(days=1))
    total = 0.0
    actual: list[tuple[int, float]] = [(start, 0.0)]
    for day, amount in sorted(chart.daily):
        total += amount
        actual.append((day_ms(day + timedelta(days=1)), total))
    hlines = [HLine(chart.budget, f"budget {plain(chart.budget)} {chart.currency}", "budget")] if chart.budget else []
    hlines += [HLine(value, label, "threshold") for value, label in chart.thresholds]
    bands: list[Band] = []
    lines = [Line("spend to date", actual, "actual")]
    if chart.forecast is not None and chart.horizon is not None and chart.spent_complete is not None:
        lower, point, upper = chart.forecast
        at = (day_ms(chart.horizon), chart.spent_complete)
        bands.append(Band([at, (end, lower)], [at, (end, upper)], f"forecast {plain(lower)} to {plain(upper)}"))
        lines.append(Line(f"forecast {plain(point)}", [at, (end, point)], "forecast", dashed=True))
    return time_chart(title, lines, start_ms=start, end_ms=end, hlines=hlines, bands=bands, y_floor=0.0, kind="burnup")


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float | None]],
    *,
    y_max: float | None = None,
    y_format: Formatter = plain,
    kind: str = "bars",
    reference: HLine | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Markup:
    """One bar per label (None: no bar, the label stays); y from 0 to `y_max` or the largest value."""
    known = [v for _, v in bars if v is not None and math.isfinite(v)]
    if not known:
        return _empty(title, "no data in this period", kind, width, height)
    top_value = max([*known, y_max or 0.0, reference.value if reference else 0.0])
    ticks = nice_ticks(0.0, top_value or 1.0)
    frame = Frame(0, len(bars), 0.0, ticks[-1], width, height)
    left, top, w, h = frame.inner
    slot = w / len(bars)
    out = [
        f'<svg class="chart chart-{_attr(kind)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_attr(title)}"><title>{_attr(title)}</title>',
        f'<rect class="plot" x="{left}" y="{top}" width="{w}" height="{h}"/><g class="axis axis-y">',
    ]
    for tick in ticks:
        y = frame.y(tick)
        out.append(
            f'<line class="grid" x1="{left}" x2="{left + w}" y1="{y}" y2="{y}"/>'
            f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{_attr(y_format(tick))}</text>'
        )
    out.append('</g><g class="bars">')
    every = max(1, math.ceil(len(bars) / 12))
    for index, (label, value) in enumerate(bars):
        x = left + index * slot
        if value is not None and math.isfinite(value):
            y = frame.y(value)
            out.append(
                f'<rect class="bar" data-label="{_attr(label)}" data-value="{value:.6g}" '
                f'x="{round(x + slot * 0.15, 1)}" y="{y}" width="{round(slot * 0.7, 1)}" '
                f'height="{round(top + h - y, 1)}">'
                f"<title>{_attr(label)}: {_attr(y_format(value))}</title></rect>"
            )
        if index % every == 0:
            out.append(
                f'<text class="label" x="{round(x + slot / 2, 1)}" y="{top + h + 17}" '
                f'text-anchor="middle">{_attr(label)}</text>'
            )
    out.append("</g>")
    if reference is not None:
        y = frame.y(reference.value)
        out.append(
            f'<g class="hline hline-{_attr(reference.kind)}" data-value="{reference.value:.6g}">'
            f'<line x1="{left}" x2="{left + w}" y1="{y}" y2="{y}"/>'
            f'<text x="{left + w - 4}" y="{y - 4}" text-anchor="end">{_attr(reference.label)}</text></g>'
        )
    out.append("</svg>")
    return Markup("".join(out))


SPARK_WIDTH = 120
SPARK_HEIGHT = 28


def sparkline(
    title: str,
    values: Sequence[float | None],
    *,
    kind: str = "spark",
    reference: float | None = None,
    bars: bool = False,
    width: int = SPARK_WIDTH,
    height: int = SPARK_HEIGHT,
) -> Markup:
    """A word-sized chart of `values` (oldest first; None: no data that step, drawn as a gap, never
    as zero), with an optional reference line (a target); `bars` draws one bar per value."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    label = _attr(title)
    if not known:
        return Markup(
            f'<svg class="spark spark-{_attr(kind)} spark-empty" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{label}: no data" width="{width}" height="{height}"><title>{label}: no data</title>'
            f'<text x="{width / 2}" y="{height / 2 + 4}" text-anchor="middle">no data</text></svg>'
        )
    low = min([*known, reference] if reference is not None else known)
    high = max([*known, reference] if reference is not None else known)
    if bars:
        low = min(low, 0.0)
    span = (high - low) or abs(high) or 1.0
    n = len(values)
    step = (width - 2) / max(n - 1, 1) if not bars else (width - 2) / n

    def y(v: float) -> float:
        return round(height - 2 - (v - low) / span * (height - 4), 1)

    out = [
        f'<svg class="spark spark-{_attr(kind)}" viewBox="0 0 {width} {height}" role="img" aria-label="{label}" '
        f'width="{width}" height="{height}" data-points="{len(known)}"><title>{label}</title>'
    ]
    if reference is not None:
        ry = y(reference)
        out.append(f'<line class="spark-ref" x1="0" x2="{width}" y1="{ry}" y2="{ry}"/>')
    if bars:
        base = y(0.0)
        for i, v in enumerate(values):
            if v is None or not math.isfinite(v):
                continue
            top = y(v)
            out.append(
                f'<rect class="spark-bar" x="{round(1 + i * step, 1)}" y="{min(top, base)}" '
                f'width="{max(round(step * 0.75, 1), 0.5)}" height="{max(round(abs(base - top), 1), 0.5)}"/>'
            )
    else:
        parts: list[str] = []
        pen = "M"
        for i, v in enumerate(values):
            if v is None or not math.isfinite(v):
                pen = "M"  # a gap: no data that step
                continue
            parts.append(f"{pen}{round(1 + i * step, 1)},{y(v)}")
            pen = "L"
        out.append(f'<path class="spark-line" d="{" ".join(parts)}"/>')
        last = next((i, v) for i, v in reversed(list(enumerate(values))) if v is not None and math.isfinite(v))
        out.append(f'<circle class="spark-last" cx="{round(1 + last[0] * step, 1)}" cy="{y(last[1])}" r="1.8"/>')
    out.append("</svg>")
    return Markup("".join(out))
