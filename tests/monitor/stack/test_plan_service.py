"""The plan in the service: computed after reconciling, kept while nothing moves, read through the
store's cache (on SQLite and PostgreSQL), and truthful when the index goes down."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.http import HttpFactory
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.stack.plan.store import PlanStore
from monitor.stack.sync import TickReport, tick
from tests.conftest import RuntimeFactory, token_headers
from tests.monitor.stack.plan_index import PlanIndex
from tests.support.http_server import LocalHttpServer

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
LOCK = "torch==2.5.1\ntorchvision==0.20.1\ntorchaudio==2.5.1\ntriton==3.1.0\nnumpy==1.26.4\n"


def config_text(tmp: Path, osv: str, index_url: str) -> str:
    return f"""
projects:
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
    sources:
      - name: deps
        kind: lockfile
        interval: 1h
        params:
          path: "{tmp / "requirements.txt"}"
          environment: {{python_version: "3.11", sys_platform: linux, platform_machine: x86_64}}
stack:
  advisories: {{path: "{osv}", refresh: 6h}}
  index: {{url: "{index_url}", packages: [torch], refresh: 6h}}
"""


@dataclass
class World:
    runtime: Runtime
    clock: FrozenClock
    index: PlanIndex

    def tick(self) -> TickReport:
        runner = SourceRunner(self.runtime.store, self.clock, HttpFactory(timeout=10))
        for plan in self.runtime.plans:
            runner.run(plan)
        return tick(self.runtime.store, self.runtime.config, self.clock.now(), HttpFactory(timeout=10), {})

    def plan(self) -> dict[str, object]:
        return dict(PlanStore(self.runtime.store.engine).documents()["churn"])


@pytest.fixture
def world(make_runtime: RuntimeFactory, db_url: str, tmp_path: Path, osv_dir: Path) -> Iterator[World]:
    (tmp_path / "requirements.txt").write_text(LOCK)
    with LocalHttpServer() as server:
        index = PlanIndex(server)
        clock = FrozenClock(T0)
        runtime = make_runtime(config_text(tmp_path, str(osv_dir), index.url()), database_url=db_url, clock=clock)
        yield World(runtime, clock, index)


def test_plan_computed_kept_and_served_from_the_store_cache(world: World) -> None:
    first = world.tick()
    assert first.plans is not None and first.plans.computed == 1 and not first.plans.errors
    doc = world.plan()
    torch = next(p for p in doc["packages"] if p["package"] == "torch")  # type: ignore[attr-defined]
    assert torch["target"] == "2.11.0" and torch["build"]["status"] == "published"
    assert torch["build"]["files"] == ["torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl"]  # the declared target
    assert {c["package"]: c["proposed"] for c in torch["companions"]} == {
        "triton": None,
        "torchaudio": "2.11.1",
        "torchvision": "0.26.0",
    }
    with TestClient(create_app(world.runtime), headers=token_headers(world.runtime)) as client:
        served = client.get("/api/v1/stack/projects/churn").json()["plan"]
    assert served == doc
    # nothing moved: the stored plan stands, the index is not asked again
    seen = world.index.requests()
    world.clock.advance(timedelta(minutes=5))
    again = world.tick()
    assert again.plans is not None and again.plans.kept == 1 and again.plans.computed == 0
    assert world.index.requests() == seen
    # past the refresh interval with the index down: pages from the store, dated; metadata cached for good
    world.index.down = True
    world.clock.advance(timedelta(hours=7))
    later = world.tick()
    assert later.plans is not None and later.plans.computed == 1
    after = world.plan()
    assert after["packages"] == doc["packages"]


def test_never_read_index_down_says_unknown_since(world: World) -> None:
    world.index.down = True
    world.tick()
    torch = next(p for p in world.plan()["packages"] if p["package"] == "torch")  # type: ignore[attr-defined]
    assert torch["basis"] == "advisories" and torch["build"]["status"] == "unknown"
    assert torch["build"]["detail"].startswith("unknown (index unreachable since 2026-12-06 08:00:00 UTC")
    assert {c["pairing"] for c in torch["companions"]} == {"unknown"}


def test_a_release_snapshot_is_not_read_as_an_index(make_runtime: RuntimeFactory, db_url: str, tmp_path: Path,
                                                    osv_dir: Path) -> None:  # fmt: skip
    """`stack.index.path` (the demo's builtin snapshot): no URL is guessed, the plan says why it is unverified."""
    (tmp_path / "requirements.txt").write_text(LOCK)
    text = config_text(tmp_path, str(osv_dir), "unused").replace('{url: "unused", ', "{path: builtin, ")
    clock = FrozenClock(T0)
    runtime = make_runtime(text, database_url=db_url, clock=clock)
    runner = SourceRunner(runtime.store, clock, HttpFactory(timeout=10))
    for plan in runtime.plans:
        runner.run(plan)
    report = tick(runtime.store, runtime.config, clock.now(), HttpFactory(timeout=10), {})
    assert report.plans is not None and report.plans.index_url is None and report.plans.requests == 0
    doc = PlanStore(runtime.store.engine).documents()["churn"]
    torch = next(p for p in doc["packages"] if p["package"] == "torch")
    assert torch["basis"] == "advisories" and torch["build"]["status"] == "unknown"
    assert "a release snapshot, no package index to read" in torch["build"]["detail"]
