"""The audit report as one self-contained HTML page that prints cleanly to paper or PDF.

Server-rendered with Jinja2 (autoescaped) from `templates/audit.html`: the stylesheet is inline,
nothing is loaded from elsewhere (no fonts, scripts or images). Print rules: A4 landscape pages
with margins and page numbers, a page per project, table headers repeated on every page, rows
never split across pages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from monitor.reports.render_csv import owners_text

TEMPLATES = Path(__file__).parent / "templates"


def when(value: str | None) -> str:
    """An ISO time as `2026-11-20 12:00 UTC` (report times are UTC)."""
    if not value:
        return "—"
    moment = datetime.fromisoformat(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def day(value: str | None) -> str:
    return value[:10] if value else "—"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def days(seconds: int | None) -> str:
    if seconds is None:
        return "no SLA"
    count = seconds / 86400
    return f"{count:g} days" if count != 1 else "1 day"


def as_json(value: object) -> str:
    """JSON for people to read (autoescaping then makes it safe in HTML, unlike `tojson`'s \\u003c)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, day=day, percent=percent, days=days, owners=owners_text, as_json=as_json)
    return env


def render_html(doc: Mapping[str, Any]) -> str:
    return environment().get_template("audit.html").render(report=doc)
