"""The pages' Jinja2 environment (autoescaped, strict) and the filters the templates use."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from monitor import __version__
from monitor.core.types import datetime_from_ms

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def when(value: datetime | str | int | None) -> str:
    """A moment as `2026-11-20 12:00 UTC` (epoch ms, ISO text or datetime)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, int):
        value = datetime_from_ms(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _moment(value: datetime | str | int) -> datetime:
    if isinstance(value, int):
        value = datetime_from_ms(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def ago(value: datetime | str | int | None, now: datetime) -> str:
    """How long before (or after) `now`: `3 min ago`, `in 2 h`, `just now`."""
    if value is None or value == "":
        return ""
    seconds = (now - _moment(value)).total_seconds()
    span = abs(seconds)
    if span < 45:
        return "just now"
    text = f"{span:.0f} s"  # 45 to 59 seconds: under a minute, but no longer "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if span >= size:
            text = f"{span / size:.0f} {unit}"
            break
    return f"{text} ago" if seconds > 0 else f"in {text}"


def moment(value: datetime | str | int | None, now: datetime | None = None) -> Markup:
    """A moment to the second in UTC with its relative form, as a `<time>` element the page's
    one small script rewrites into the viewer's time zone (without scripts it stays UTC)."""
    if value is None or value == "":
        return Markup('<span class="muted">never</span>')
    at = _moment(value)
    text = at.strftime("%Y-%m-%d %H:%M:%S UTC")
    relative = f" ({ago(at, now)})" if now is not None else ""
    return Markup('<time datetime="{}" data-local="1">{}</time><span class="ago">{}</span>').format(
        at.isoformat().replace("+00:00", "Z"), text, relative
    )


def day(value: datetime | str | None) -> str:
    return when(value)[:10] if value else "—"


def number(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}"


def signed(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:+.{digits}g}"


def money(value: float | None, currency: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{text} {currency}".strip()


def percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 100:.0f}%"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    days = seconds / 86400
    if days >= 1:
        return f"{days:.0f} days" if days >= 2 else "1 day"
    hours = seconds / 3600
    return f"{hours:.0f} h"


def span(seconds: float | None) -> str:
    """A duration to the second for small ones: `45 s`, `12 min 5 s`, `3 h 20 min`, `2 d 4 h`."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    whole = int(round(abs(seconds)))
    sign = "-" if seconds < 0 else ""
    d, rest = divmod(whole, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    if d:
        return f"{sign}{d} d {h} h" if h else f"{sign}{d} d"
    if h:
        return f"{sign}{h} h {m} min" if m else f"{sign}{h} h"
    if m:
        return f"{sign}{m} min {s} s" if s else f"{sign}{m} min"
    return f"{sign}{s} s"


UNIT_SUFFIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("_seconds", "_duration", "_age", "latency"), "duration"),
    (("_ratio", "accuracy", "_rate", "_share", "precision", "recall", "f1", "auc"), "percent"),
    (("_usd", "_eur", "_cost", "_spend", "spend", "cost", "budget"), "money"),
    (("_bytes",), "bytes"),
)


def with_unit(value: float | None, metric: str = "", currency: str = "USD") -> str:
    """A value in its unit, read from the metric's name: seconds as a duration, ratios as percent,
    money with its currency; anything else with four significant digits, never `1.051e+07`."""
    if value is None or not math.isfinite(value):
        return "—"
    name = metric.lower()
    unit = next((u for suffixes, u in UNIT_SUFFIXES if any(name.endswith(x) or x in name for x in suffixes)), "")
    if unit == "duration":
        return span(value)
    if unit == "percent" and -1.5 <= value <= 1.5:
        return f"{value * 100:.1f}%"
    if unit == "money":
        code = currency
        for suffix in ("_usd", "_eur"):
            if name.endswith(suffix):
                code = suffix[1:].upper()
        return money(value, code)
    if unit == "bytes":
        for size, label in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if abs(value) >= size:
                return f"{value / size:.1f} {label}"
        return f"{value:.0f} B"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.4g}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(when=when, day=day, number=number, signed=signed, money=money, percent=percent,
                       duration=duration, span=span, moment=moment, ago=ago, with_unit=with_unit)  # fmt: skip
    env.globals["version"] = __version__
    return env


def render(template: str, **context: Any) -> str:
    from monitor.web.site import CURRENT

    context.setdefault("site", CURRENT.get())
    return environment().get_template(template).render(**context)
