"""The pages' Jinja2 environment (autoescaped, strict) and the filters the templates use."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

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
                       duration=duration)  # fmt: skip
    env.globals["version"] = __version__
    return env


def render(template: str, **context: Any) -> str:
    from monitor.web.site import CURRENT

    context.setdefault("site", CURRENT.get())
    return environment().get_template(template).render(**context)
