"""The demo cluster's allocation feed, answering as OpenCost's `/allocation` API does.

Served from mlmon's own process under `/demo/opencost` (see `routes.py`) so the `opencost` source
kind reads GPU-hours held and how busy they were, with nothing running outside mlmon. The GPU
hours are those the bill charges (`focus_export.daily_use`); the efficiency is each project's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from monitor.demo.fleet import DemoProject
from monitor.demo.focus_export import STORAGE_SHARE, DayUse


def parse_window(window: str) -> tuple[datetime, datetime]:
    """OpenCost's `window=<start>,<end>` (RFC 3339); ValueError names what was expected."""
    start_text, sep, end_text = window.partition(",")
    if not sep:
        raise ValueError(f"window: expected <RFC 3339 start>,<RFC 3339 end>, got {window!r}")
    start = datetime.fromisoformat(start_text.replace("Z", "+00:00"))
    end = datetime.fromisoformat(end_text.replace("Z", "+00:00"))
    if end <= start:
        raise ValueError(f"window: the end {end_text} is not after the start {start_text}")
    return start, end


def allocation_set(fleet: Sequence[DemoProject], uses: Sequence[DayUse], day: date) -> dict[str, Any]:
    """One day's allocations keyed by the `ml-project` label value."""
    efficiency = {p.id: p.gpu_efficiency for p in fleet}
    out: dict[str, Any] = {}
    for use in uses:
        if use.day != day or use.project not in efficiency:
            continue
        out[use.project] = {
            "name": use.project,
            "gpuCost": use.gpu_cost,
            "gpuCostAdjustment": 0.0,
            "totalCost": round(use.gpu_cost * (1 + STORAGE_SHARE), 2),
            "gpuHours": round(use.gpu_hours, 4),
            "gpuEfficiency": efficiency[use.project],
        }
    return out


def answer(fleet: Sequence[DemoProject], uses: Sequence[DayUse], window: str) -> dict[str, Any]:
    start, _end = parse_window(window)
    return {"code": 200, "status": "success", "data": [allocation_set(fleet, uses, start.date())]}
