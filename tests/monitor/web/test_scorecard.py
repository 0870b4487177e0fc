"""The scorecard read model against the families' own APIs, on SQLite and PostgreSQL: what the
overview says of each project is what the quality, spend, stack and alerts APIs say, and it
follows new data (its caches are keyed on the data they depend on)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from monitor.core.types import Sample, SeriesKey, ms_from_datetime
from monitor.http import HttpFactory
from monitor.runner import SourceRunner
from monitor.stack.sync import tick
from monitor.views.scorecard import Scorecard, build_scorecards
from monitor.views.verdicts import Status
from tests.monitor.spend.focus_data import Charge, write_focus
from tests.monitor.web.conftest import make_world
from tests.monitor.web.world import NOW, World


@pytest.fixture
def db_world(db_url: str, tmp_path: Path) -> Iterator[World]:
    built = make_world(tmp_path, database_url=db_url)
    yield built
    built.runtime.store.close()


def cards(world: World, now: datetime = NOW) -> dict[str, Scorecard]:
    runtime = world.runtime
    return {c.project: c for c in build_scorecards(runtime.store, runtime.config, now, runtime.config.projects)}


def api(client: TestClient, world: World, path: str) -> object:
    answer = client.get(path, headers=world.headers("admin"))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_scorecard_agrees_with_the_family_apis(db_world: World) -> None:
    found = cards(db_world)
    with db_world.client() as client:
        budgets = {p["project"]: p for p in api(client, db_world, "/api/v1/spend/projects")}  # type: ignore[union-attr]
        findings = api(client, db_world, "/api/v1/stack/findings")
        alerts = api(client, db_world, "/api/v1/alerts?state=firing")
        series = api(client, db_world, '/api/v1/quality/series?match=accuracy{project="churn"}')
        stack = {p["project"]: p for p in api(client, db_world, "/api/v1/stack/projects")}  # type: ignore[union-attr]

    for project, card in found.items():
        budget = budgets[project]["budget"]
        if budget is None:
            assert card.spend.budget is None and "no_budget" in card.flags
        else:
            assert card.spend.budget == budget["amount"]
            assert card.spend.spent == pytest.approx(budget["spent"])
            assert card.spend.forecast == pytest.approx(budget["forecast"]["point"])
            assert card.spend.lower == pytest.approx(budget["forecast"]["lower"])
            assert card.spend.upper == pytest.approx(budget["forecast"]["upper"])
        mine = [f for f in findings if f["project"] == project]  # type: ignore[union-attr]
        open_ = [f for f in mine if f["status"] == "open"]
        assert card.stack.open_total == len(open_), project
        assert card.stack.overdue == sum(f["overdue"] for f in mine), project
        assert card.stack.ignored == sum(f["status"] == "ignored" for f in mine)
        torch = stack[project]["torch"]
        assert card.stack.torch == (torch["version"] if torch else None)
        assert card.alerts.firing == sum(a["project"] == project for a in alerts)  # type: ignore[union-attr]

    churn = found["churn"]
    [accuracy] = [s for s in series if s["labels"] == {"model": "churn-classifier"}]  # type: ignore[union-attr]
    assert churn.quality.value == pytest.approx(accuracy["latest"][1])
    assert churn.quality.baseline == pytest.approx(accuracy["baseline"]["value"]) == pytest.approx(0.93)
    assert churn.quality.met is False and churn.quality.status is Status.BAD
    assert churn.stack.overdue == 5 and churn.stack.status is Status.BAD
    assert churn.spend.status is Status.OK and churn.spend.efficiency == pytest.approx(0.25)
    assert churn.spend.tco == pytest.approx(budgets["churn"]["budget"]["spent"] + 20000 * (19.5 / 30))
    assert found["vision"].spend.status is Status.BAD  # 124% of its budget
    assert found["vision"].flags == ("single_owner", "no_target", "no_baseline")
    assert found["ranker"].flags == ("no_owner", "no_target", "no_baseline", "no_budget")
    assert found["churn"].flags == ()
    assert found["finops"].stack.reconciled is False and found["finops"].stack.status is Status.NONE


def test_the_scorecard_follows_new_data(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    runtime, store = world.runtime, world.runtime.store
    before = cards(world)
    assert before["churn"].quality.status is Status.BAD

    # a new evaluation: read fresh on every request
    key = SeriesKey("churn", "accuracy", (("model", "churn-classifier"),))
    store.samples.append([Sample(key, ms_from_datetime(NOW), 0.95)])
    after = cards(world)["churn"]
    assert after.quality.value == 0.95 and after.quality.met and after.quality.status is Status.OK

    # new spend: the source's data version changes, so the cached days and cells are replaced
    write_focus(tmp_path / "focus" / "aws-extra.csv", [Charge(NOW - timedelta(hours=3), 900.0, "churn")])
    [aws] = [p for p in runtime.plans if p.id == "finops/aws"]
    assert SourceRunner(store, world.clock, HttpFactory(timeout=10)).run(aws).ok
    assert cards(world)["churn"].spend.spent == pytest.approx(before["churn"].spend.spent + 900.0)

    # an upgrade within the same minute: the findings' event log moves, the counts follow
    later = NOW + timedelta(seconds=30)
    world.clock.set(later)
    (tmp_path / "churn" / "requirements.txt").write_text("torch==2.10.0\nrequests==2.32.3\n")
    [deps] = [p for p in runtime.plans if p.id == "churn/deps"]
    assert SourceRunner(store, world.clock, HttpFactory(timeout=10)).run(deps).ok
    assert not tick(store, runtime.config, later, HttpFactory(timeout=10), {}, refresh=False).reconcile.errors
    upgraded = cards(world, later)["churn"].stack
    assert (
        upgraded.torch == "2.10.0" and upgraded.overdue == 0 and upgraded.open_total < before["churn"].stack.open_total
    )
    store.close()
