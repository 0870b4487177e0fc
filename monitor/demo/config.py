"""The demo's configuration, made from the fleet: an ordinary mlmon file, written into the data
directory so that it can be read, copied and edited (`mlmon serve -c .mlmon-demo/mlmon.yaml`).

Every path points into the data directory and every URL at the listen address: the demo reaches
nothing outside the process and the machine. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor.demo.fleet import DemoProject

BANNER = (
    "Demo fleet: made-up projects with generated data (a FOCUS bill, lock files, pushed quality history), "
    "refreshed live. Serve your own file with `make run CONFIG=path/to/mlmon.yaml`."
)

HEADER = """\
# The mlmon demo fleet, written by `mlmon demo` (make run) into its data directory.
#
# Ten projects on generated data: a FOCUS export of the cloud bill (focus/), a lock file per
# project (repos/), quality history and model version changes pushed by the demo's evaluation job,
# an OpenCost-compatible allocation feed served by mlmon itself (/demo/opencost) and the OSV
# snapshot shipped with mlmon. Nothing outside this machine is reached. Rewritten on every start.
"""


def _owners(project: DemoProject) -> list[dict[str, str]]:
    return [{k: v for k, v in (("name", o.name), ("email", o.email), ("slack", o.slack)) if v} for o in project.owners]


def _project(project: DemoProject, data: Path) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": project.id,
        "name": project.name,
        "team": project.team,
        "description": f"Demo: {project.story}.",
        "owners": _owners(project),
        "labels": {"tier": "gold" if project.target else "silver"},
        "sources": [
            {
                "name": "eval",
                "kind": "push",
                "interval": "1m",
                "params": {"expect": [{"metric": "accuracy", "labels": {"model": project.model}, "max_age": "1h"}]},
            },
            {
                "name": "serve-lock",
                "kind": "lockfile",
                "interval": "5m",
                "params": {"path": str(data / "repos" / project.id / "requirements.txt")},
            },
        ],
    }
    if project.target is not None:
        doc["quality"] = {
            "success": {"metric": "accuracy", "op": ">=", "target": project.target, "labels": {"model": project.model}}
        }
    if project.budget is not None:
        doc["spend"] = {
            "currency": "USD",
            "budget": {
                "amount": project.budget,
                "sources": ["bill"],
                "thresholds": {"actual": ["90%", "100%"], "forecast": ["100%"]},
            },
        }
    return doc


def _platform(listen: str, data: Path) -> dict[str, Any]:
    return {
        "id": "platform",
        "name": "ML platform",
        "team": "ml-platform",
        "description": "Demo: holds the shared sources (the bill, the cluster's allocations) and watches mlmon itself.",
        "owners": [
            {"name": "Platform on-call", "email": "platform-oncall@example.com", "slack": "#ml-platform"},
            {"name": "Lynn Conway", "email": "lynn@example.com"},
        ],
        "labels": {"tier": "internal"},
        "sources": [
            {
                "name": "status",
                "kind": "http_json",
                "interval": "15s",
                "timeout": "5s",
                "params": {
                    "url": f"http://{listen}/api/v1/status",
                    "metrics": [
                        {"metric": "store_series", "path": "$.store.series"},
                        {"metric": "store_size_bytes", "path": "$.store.size_bytes"},
                        {"metric": "failing_sources", "path": "$.sources.failing"},
                    ],
                },
            },
            {
                "name": "bill",
                "kind": "focus",
                "interval": "1m",
                "timeout": "1m",
                "params": {"path": str(data / "focus" / "*.csv"), "attribution": [{"tag": "ml-project"}]},
            },
            {
                "name": "cluster",
                "kind": "opencost",
                "interval": "1m",
                "timeout": "30s",
                "params": {
                    "url": f"http://{listen}/demo/opencost",
                    "aggregate": "label:ml-project",
                    "backfill": "30d",
                },
            },
        ],
    }


RULES: list[dict[str, Any]] = [
    {
        "name": "accuracy-drop",
        "kind": "drop",
        "for": "0s",
        "labels": {"severity": "critical"},
        "params": {"metric": "accuracy", "min_drop": 0.02, "examples_metric": "accuracy_examples", "alpha": 0.01},
    },
    {"name": "budget", "kind": "budget", "for": "0s", "labels": {"severity": "warning"}},
    {
        "name": "idle-gpus",
        "kind": "idle_gpu",
        "for": "0s",
        "labels": {"severity": "warning"},
        "params": {"floor": 0.1, "clear": 0.2, "window": "2d", "min_gpu_hours": 8},
    },
    {
        "name": "torch-critical",
        "kind": "vulnerable",
        "for": "0s",
        "labels": {"severity": "critical"},
        "params": {"severity": "critical"},
    },  # fmt: skip
    {"name": "patch-sla", "kind": "patch_sla", "for": "0s", "labels": {"severity": "warning"}},
    {
        "name": "slow-delivery",
        "kind": "threshold",
        "for": "0s",
        "labels": {"severity": "info"},
        "params": {"metric": "model_promotion_age_seconds", "op": ">", "value": 7776000},
    },
    {"name": "source-down", "kind": "source_down", "labels": {"severity": "warning"}, "params": {"failures": 3}},
]


def demo_config(fleet: Sequence[DemoProject], listen: str, data: Path) -> dict[str, Any]:
    return {
        "ui": {"banner": BANNER},
        "retention": {"raw": "45d", "hourly": "400d"},
        "alerting": {"evaluation_interval": "15s"},
        "spend": {"forecast": {"lookback": "28d", "min_days": 7}},
        "stack": {
            "advisories": {"path": "builtin"},
            "index": {"path": "builtin", "packages": ["torch"]},
            "sla": {"critical": "7d", "high": "30d", "medium": "90d", "low": "180d"},
            "sync_interval": "15s",
        },
        "projects": [_platform(listen, data), *(_project(p, data) for p in fleet)],
        "rules": RULES,
    }
