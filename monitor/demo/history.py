"""The demo's quality history: what each project's evaluation job and model registry would push.

Values are a pure function of the time and of the demo's anchor (the moment the data directory
was first seeded), so pushing an overlapping range again changes nothing: the store keeps one
sample per series and timestamp. The story times (a version change two days ago) count back from
the anchor, so a demo restarted later keeps its history instead of rewriting it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from monitor.core.types import ms_from_datetime
from monitor.demo.fleet import DemoProject

STEP = timedelta(hours=6)
"""One evaluation every six hours in the history."""
HISTORY = timedelta(days=30)
ALIAS = "production"


def _noise(project: DemoProject, at_ms: int) -> float:
    """A small, deterministic wobble (±0.4 points) so the charts look like measurements."""
    slot = at_ms // 3_600_000
    return 0.004 * math.sin(slot * 0.77 + len(project.id) * 1.3) * math.cos(slot * 0.13)


def changed_at(project: DemoProject, anchor: datetime) -> datetime:
    return anchor - timedelta(days=project.version_changed_days_ago)


def accuracy_at(project: DemoProject, anchor: datetime, at: datetime) -> float:
    after_change = at >= changed_at(project, anchor)
    value = project.accuracy - (project.drop_after_change if after_change else 0.0)
    return round(min(1.0, max(0.0, value + _noise(project, ms_from_datetime(at)))), 4)


def times(start: datetime, end: datetime) -> list[datetime]:
    """Every STEP boundary in [start, end], and `end` itself (the newest evaluation)."""
    step_s = STEP.total_seconds()
    first = math.ceil(start.timestamp() / step_s) * step_s
    out = [datetime.fromtimestamp(first, start.tzinfo) + i * STEP for i in range(int((end - start) / STEP) + 2)]
    return [t for t in out if start <= t <= end] + [end]


def samples(project: DemoProject, anchor: datetime, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The samples of [start, end] in the `POST /api/v1/samples` shape."""
    model = {"model": project.model}
    registry = {**model, "alias": ALIAS}
    change = changed_at(project, anchor)
    out: list[dict[str, Any]] = []
    for at in times(start, end):
        ts = at.timestamp()
        out.append({"project": project.id, "metric": "accuracy", "labels": model,
                    "value": accuracy_at(project, anchor, at), "timestamp": ts})  # fmt: skip
        out.append({"project": project.id, "metric": "accuracy_examples", "labels": model,
                    "value": 20000.0, "timestamp": ts})  # fmt: skip
        if project.baseline:
            out.append({"project": project.id, "metric": "accuracy_baseline", "labels": model,
                        "value": project.accuracy, "timestamp": ts})  # fmt: skip
        version = project.version if at >= change else project.version - 1
        promotions = 1.0 if at - change <= timedelta(days=30) and at >= change else 0.0
        age = (at - change).total_seconds() if at >= change else 0.0
        out += [
            {"project": project.id, "metric": "model_version", "labels": registry, "value": float(version),
             "timestamp": ts},
            {"project": project.id, "metric": "model_promotions", "labels": {**registry, "window": "30d"},
             "value": promotions, "timestamp": ts},
            {"project": project.id, "metric": "model_promotion_age_seconds", "labels": registry,
             "value": round(age), "timestamp": ts},
            {"project": project.id, "metric": "model_promotion_lead_time_seconds", "labels": registry,
             "value": project.lead_time_days * 86400, "timestamp": ts},
        ]  # fmt: skip
    return out


def events(fleet: Sequence[DemoProject], anchor: datetime) -> list[dict[str, Any]]:
    """Each project's latest model version change, in the `POST /api/v1/events` shape."""
    return [
        {
            "project": p.id,
            "kind": "model_version",
            "subject": f"model {p.model}",
            "old": str(p.version - 1),
            "new": str(p.version),
            "message": f"model {p.model} version {p.version - 1} -> {p.version} (alias {ALIAS})",
            "labels": {"model": p.model, "alias": ALIAS},
            "timestamp": changed_at(p, anchor).timestamp(),
        }
        for p in fleet
    ]
