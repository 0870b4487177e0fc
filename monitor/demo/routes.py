"""`/demo/opencost/allocation`: the demo cluster's allocations, served from mlmon's own process."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from monitor.demo.allocations import answer
from monitor.demo.files import FOCUS_DAYS
from monitor.demo.fleet import FLEET
from monitor.demo.focus_export import daily_use

router = APIRouter(prefix="/demo/opencost", include_in_schema=False)


@router.get("/allocation")
def allocation(window: str = Query(...), aggregate: str = Query("namespace")) -> dict[str, Any]:
    if aggregate != "label:ml-project":
        raise HTTPException(400, f"aggregate: the demo cluster aggregates by label:ml-project, not {aggregate!r}")
    try:
        return answer(FLEET, daily_use(FLEET, datetime.now(UTC), FOCUS_DAYS), window)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
