"""`make run`'s demo fleet, served for real: every family shows data and its behaviour within a
minute, on SQLite, with every source reaching only this process."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.monitor.spend.focus_data import require_pyarrow
from tests.support.demo import Demo, running_demo
from tests.support.peers import mlmon_command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    require_pyarrow()
    with running_demo(tmp_path_factory.mktemp("demo")) as running:
        yield running


def _alerts(demo: Demo, name: str, project: str) -> list[dict[str, Any]]:
    found = demo.get("/api/v1/alerts", state="firing", project=project)
    items = found if isinstance(found, list) else found["alerts"]
    return [a for a in items if a["labels"].get("alertname") == name]


def test_every_source_runs_and_succeeds(demo: Demo) -> None:
    """The bill, the allocation feed, the lock files, the pushes and mlmon polling itself."""

    def all_up() -> bool:
        projects = demo.get("/api/v1/projects")
        sources = [(p["id"], s) for p in projects for s in p["sources"]]
        return len(projects) == 10 and all(s.get("up") is True for _, s in sources)

    demo.wait_for("every source of the ten projects up", all_up)
    status = demo.get("/api/v1/status")
    assert status["sources"]["failing"] == 0


def test_quality_history_and_the_version_change_named_as_likely_cause(demo: Demo) -> None:
    series = demo.get("/api/v1/series", match='accuracy{project="fraud"}')
    assert series, "the fraud project's accuracy history is pushed at start"
    events = demo.get("/api/v1/events", project="fraud", kind="model_version")
    items = events if isinstance(events, list) else events["events"]
    assert any("version 7 -> 8" in e["message"] for e in items)
    demo.wait_for("the accuracy drop of fraud firing", lambda: bool(_alerts(demo, "accuracy-drop", "fraud")))
    (alert,) = _alerts(demo, "accuracy-drop", "fraud")
    assert "model fraud-detector version 7 -> 8" in alert["likely_cause"]
    models = demo.get("/api/v1/quality/models", project="search-rank")
    assert models, "delivery pace of the registered model"
    demo.wait_for("slow delivery of search-rank", lambda: bool(_alerts(demo, "slow-delivery", "search-rank")))


def test_spend_forecast_overrun_and_idle_gpus(demo: Demo) -> None:
    demo.wait_for("vision's forecast overrun", lambda: bool(_alerts(demo, "budget", "vision")))
    (budget,) = _alerts(demo, "budget", "vision")
    assert "forecast" in budget["annotations"]["summary"]
    spend = {p["project"]: p for p in demo.get("/api/v1/spend/projects")}
    assert set(spend) >= {"fraud", "vision", "recsys", "churn"}
    demo.wait_for("recsys's idle GPUs", lambda: bool(_alerts(demo, "idle-gpus", "recsys")))
    (idle,) = _alerts(demo, "idle-gpus", "recsys")
    assert "busy 6%" in idle["annotations"]["summary"]
    assert not _alerts(demo, "idle-gpus", "vision"), "busy GPUs are not flagged"


def test_stack_findings_from_the_shipped_snapshot_with_an_overdue_fix(demo: Demo) -> None:
    def critical_open() -> bool:
        found = demo.get("/api/v1/stack/findings", project="search-rank")
        items = found if isinstance(found, list) else found["findings"]
        return any(f.get("severity") == "critical" for f in items)

    demo.wait_for("search-rank's critical torch finding", critical_open)
    demo.wait_for("an overdue fix (patch SLA)", lambda: bool(_alerts(demo, "patch-sla", "search-rank")))
    feeds = demo.get("/api/v1/stack/advisories")
    text = str(feeds)
    assert "snapshot shipped with mlmon" in text
    # torch on its newest release: no finding has a fix it lacks
    assert not _alerts(demo, "patch-sla", "churn")


def test_every_page_says_it_is_a_demo_and_which_advisory_data_is_in_use(demo: Demo) -> None:
    import httpx

    demo.wait_for("the advisory feed loaded", lambda: "loaded" in httpx.get(demo.url + "/", timeout=20).text)
    for path in ("/", "/projects/fraud", "/alerts"):
        page = httpx.get(demo.url + path, timeout=20).text
        assert 'id="site-banner"' in page and "Demo fleet" in page, path
        assert "Advisory data: the torch-family OSV snapshot shipped with mlmon, 151 records" in page, path
        assert "data as of 2026-07-23" in page, path


def test_the_written_configuration_is_an_ordinary_valid_file(demo: Demo) -> None:
    config = demo.data / "mlmon.yaml"
    done = subprocess.run(mlmon_command("check-config", str(config)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    text = config.read_text()
    assert demo.url.removeprefix("http://") in text, "the self-polling source follows the listen address"
    assert "api.osv.dev" not in text and "https://" not in text, "nothing outside the machine"


def test_a_data_directory_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    target = blocker / "demo"
    done = subprocess.run(
        mlmon_command("demo", "--data-dir", str(target), "--listen", "127.0.0.1:1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert f"demo data directory {target} is not writable" in done.stderr
    assert "Traceback" not in done.stderr
