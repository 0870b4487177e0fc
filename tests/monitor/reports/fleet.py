"""A fleet of projects with a month of stack history, for scale tests and benchmarks.

The history is written by the stack's own code: the real advisory database imported as one
revision (`import_offline`), torch's real release history, inventories stored with
`StackStore.put_inventory` (what `stack sync`'s ingest does with a source's checkpoint) and
findings reconciled by `monitor.stack.sync.reconcile` day after day, so findings open, change,
get ignored, expire and are fixed as they would in service. Only the run log (`source_runs`,
`source_state`) and change log rows are bulk-inserted, as the runner and the API would have
written them.

    fleet = build_fleet(store, projects=1000, packages=300, days=30)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from monitor.config.models import MlmonConfig
from monitor.stack.inventory.model import Inventory, Package, TorchBuild
from monitor.stack.inventory.torch_build import from_label
from monitor.stack.releases import ReleaseHistory
from monitor.stack.store import StackStore
from monitor.stack.sync import import_offline, inventory_row, reconcile
from monitor.store.changes import Change
from monitor.store.db import write_tx
from monitor.store.schema import source_runs, source_state
from monitor.store.store import Store
from tests.monitor.stack.support import torch_releases
from tests.support.peers import shared_data

START = datetime(2026, 10, 1, tzinfo=UTC)
TORCH = ["2.2.2", "2.3.1+cu121", "2.4.1", "2.5.1+cu124", "2.6.0+cu124", "2.7.1", "2.8.0+cpu", "2.9.1", "2.10.0"]
COMPANIONS = {
    "transformers": ["4.36.0", "4.38.0", "4.44.2", "4.48.0", "4.52.1"],
    "pillow": ["9.5.0", "10.0.0", "10.3.0", "11.0.0"],
    "numpy": ["1.21.6", "1.26.4", "2.0.2"],
}
IGNORED = "CVE-2025-32434"


@dataclass(frozen=True)
class Fleet:
    config: MlmonConfig
    start: datetime
    end: datetime
    projects: list[str]


def fleet_config(names: list[str], start: datetime) -> MlmonConfig:
    """Every fifth project ignores CVE-2025-32434 until the middle of the month."""
    expires = (start + timedelta(days=14)).date()
    return MlmonConfig.model_validate(
        {
            "projects": [
                {
                    "id": name,
                    "team": f"team-{i % 25}",
                    "owners": [{"name": f"Owner {i}", "email": f"owner{i}@example.com"}],
                    "sources": [{"name": "env", "kind": "lockfile", "interval": "1h", "params": {"path": f"/srv/{name}/requirements.txt"}}],
                    "stack": {"ignores": [{"id": IGNORED, "reason": "weights are signed", "expires": expires}] if i % 5 == 0 else []},
                }
                for i, name in enumerate(names)
            ],
        }
    )  # fmt: skip


def _inventory(name: str, torch: str, companions: dict[str, str], fillers: int, bump: int) -> Inventory:
    origin = f"/srv/{name}/requirements.txt"
    packages = [Package("torch", torch, origin, 1)]
    packages += [Package(pkg, version, origin, i + 2) for i, (pkg, version) in enumerate(sorted(companions.items()))]
    packages += [
        Package(f"pkg-{j:04d}", f"1.{(j + (bump if j == 0 else 0)) % 10}.0", origin, j + 10) for j in range(fillers)
    ]
    build = from_label(torch) or TorchBuild(torch, "cuda", "12.6", "pinned nvidia-cuda-runtime-cu12")
    return Inventory("lockfile", origin, tuple(packages), "3.11", build)


def _store_inventory(stack: StackStore, name: str, inventory: Inventory, at: datetime) -> None:
    pairs = {(p.name, p.version) for p in inventory.packages}
    with write_tx(stack.engine) as conn:
        stack.put_inventory(conn, name, "env", inventory_row(inventory, at), pairs, at)


def build_fleet(
    store: Store, *, projects: int = 1000, packages: int = 300, days: int = 30, runs_per_day: int = 24, seed: int = 7
) -> Fleet:
    rng = random.Random(seed)
    names = [f"p{i:04d}" for i in range(projects)]
    config = fleet_config(names, START)
    stack = StackStore(store.engine)
    osv = str(shared_data("osv"))
    import_offline(store, osv, START)
    stack.record_feed("advisories", kind="offline", location=osv, now=START, records=stack.advisory_counts()["records"])
    stack.put_history(ReleaseHistory.from_doc("torch", torch_releases(), "https://index.invalid/simple/torch/"), START)
    stack.record_feed("index:torch", kind="pep691", location="https://index.invalid/simple/torch/", now=START)

    fillers = max(0, packages - 1 - len(COMPANIONS))
    state: dict[str, dict[str, Any]] = {}
    for name in names:
        state[name] = {
            "torch": rng.randrange(len(TORCH) - 2),
            "companions": {pkg: rng.choice(versions) for pkg, versions in COMPANIONS.items()},
            "bump": 0,
        }
    end = START + timedelta(days=days)
    for day in range(days + 1):
        at = START + timedelta(days=day)
        changed = names if day == 0 else [n for n in names if day % 7 == 0 and rng.random() < 0.2]
        for name in changed:
            item = state[name]
            if day:
                item["torch"] = min(item["torch"] + rng.randrange(1, 3), len(TORCH) - 1)
                item["bump"] += 1
            inventory = _inventory(name, TORCH[item["torch"]], item["companions"], fillers, item["bump"])
            _store_inventory(stack, name, inventory, at)
        reconcile(store, config, at)
        _runs(store, names, at, runs_per_day, rng)
        _changes(store, names, at, rng)
    _states(store, names, end)
    return Fleet(config, START, end, names)


def _runs(store: Store, names: list[str], day: datetime, per_day: int, rng: random.Random) -> None:
    rows = [
        {
            "project": name, "source": "env", "kind": "lockfile", "started_at": day + timedelta(hours=24 * k / per_day),
            "duration_seconds": 0.05, "outcome": "ok" if rng.random() > 0.01 else "failed",
            "error": None, "samples": 1, "events": 0,
        }
        for name in names
        for k in range(per_day)
    ]  # fmt: skip
    with write_tx(store.engine) as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(source_runs), rows[start : start + 5000])


def _changes(store: Store, names: list[str], day: datetime, rng: random.Random) -> None:
    picked = rng.sample(names, max(1, len(names) // 30))
    with write_tx(store.engine) as conn:
        store.changes.record(Change(day, "SIGHUP", "config.reload", None, "mlmon.yaml", {}), conn)
        for name in picked:
            store.changes.record(
                Change(day + timedelta(hours=3), "cli:ops", "budget.set", name, "gpu", {"usd": 900}), conn
            )


def _states(store: Store, names: list[str], end: datetime) -> None:
    last = end + timedelta(hours=23)
    rows = [
        {
            "project": name, "source": "env", "kind": "lockfile", "first_run_at": START, "last_run_at": last,
            "last_success_at": last, "last_outcome": "ok", "last_error": None, "last_duration_seconds": 0.05,
            "consecutive_failures": 0, "runs_total": 1, "failures_total": 0, "run_seconds_total": 0.05,
            "checkpoint": None,
        }
        for name in names
    ]  # fmt: skip
    with write_tx(store.engine) as conn:
        conn.execute(insert(source_state), rows)


def ignore_expiry(fleet: Fleet) -> date:
    return (fleet.start + timedelta(days=14)).date()
