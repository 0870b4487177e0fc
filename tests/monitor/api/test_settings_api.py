"""Budgets, rules and ignores an owner sets through the API: laid over the file, validated like a
reload, logged, kept across restarts, and picked up by other processes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.config.settings import Settings
from monitor.core.clock import FrozenClock
from monitor.runtime import Runtime
from tests.conftest import RuntimeFactory, token_headers

CONFIG = """
projects:
  - id: churn
    owners: [{name: Ada, email: ada@example.com}]
    spend: {budget: {amount: 1000, currency: USD}}
    sources: [{name: billing, kind: focus, params: {path: /nonexistent/exports/*.csv, attribution: [{tag: ml-project}]}}]
  - id: vision
    owners: [{name: Grace, email: grace@example.com}]
rules:
  - {name: accuracy-low, kind: threshold, params: {metric: accuracy, op: "<", value: 0.9}}
"""


def _client(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime), headers=token_headers(runtime, "owner", ("churn",), name="ada"))


def test_an_owner_sets_a_budget_rule_and_ignore(make_runtime: RuntimeFactory, clock: FrozenClock) -> None:
    runtime = make_runtime(CONFIG, clock=clock)
    client = _client(runtime)
    assert client.put("/api/v1/projects/churn/budget", json={"amount": 2500, "period": "quarterly"}).status_code == 200
    churn = runtime.config.project("churn")
    assert churn is not None and churn.spend.budget is not None
    assert (churn.spend.budget.amount, churn.spend.budget.period.value) == (2500, "quarterly"), "replaces the file's"
    rule = {
        "kind": "threshold",
        "for": "10m",
        "labels": {"severity": "warning"},
        "params": {"metric": "latency_seconds", "op": ">", "value": 2},
    }
    assert client.put("/api/v1/projects/churn/rules/slow", json=rule).status_code == 200
    (slow,) = [r for r in runtime.config.rules if r.name == "slow"]
    assert slow.projects == ["churn"] and slow.for_.total_seconds() == 600
    ignore = {"reason": "TorchScript unused", "expires": "2027-03-31", "packages": ["torch"]}
    assert client.put("/api/v1/projects/churn/ignores/CVE-2025-3000", json=ignore).status_code == 200
    assert churn.id == "churn" and runtime.config.project("churn").stack.ignores[0].id == "CVE-2025-3000"  # type: ignore[union-attr]
    listed = client.get("/api/v1/projects/churn/settings").json()
    assert [(s["kind"], s["name"], s["created_by"]) for s in listed] == [
        ("budget", "budget", "ada"), ("rule", "slow", "ada"), ("ignore", "CVE-2025-3000", "ada"),
    ]  # fmt: skip
    actions = [(c.action, c.actor, c.project) for c in runtime.store.changes.entries() if c.action != "config.reload"]
    assert actions == [
        ("budget.change", "ada", "churn"),
        ("rule.create", "ada", "churn"),
        ("ignore.change", "ada", "churn"),
    ]
    assert client.delete("/api/v1/projects/churn/rules/slow").status_code == 200
    assert [r.name for r in runtime.config.rules] == ["accuracy-low"]
    assert client.delete("/api/v1/projects/churn/rules/slow").status_code == 404

    # a restart (a new runtime on the same store and file) keeps them
    again = Runtime.create(
        Settings(config=runtime.settings.config, database_url=str(runtime.store.engine.url)), clock=clock
    )
    churn_again = again.config.project("churn")
    assert churn_again is not None and churn_again.spend.budget is not None and churn_again.spend.budget.amount == 2500
    # and another process picks up a change made elsewhere
    client.delete("/api/v1/projects/churn/budget")
    assert again.refresh_overrides() is True
    assert again.config.project("churn").spend.budget.amount == 1000  # type: ignore[union-attr]
    assert again.refresh_overrides() is False
    again.store.close()


def test_invalid_settings_are_refused_and_change_nothing(make_runtime: RuntimeFactory, clock: FrozenClock) -> None:
    runtime = make_runtime(CONFIG, clock=clock)
    client = _client(runtime)
    before = runtime.config
    cases = [
        ("/api/v1/projects/churn/budget", {"amount": -5}, "budget.amount"),
        ("/api/v1/projects/churn/budget", {"amount": 10, "currency": "EUR", "extra": 1}, "budget.extra"),
        ("/api/v1/projects/churn/rules/accuracy-low", {"kind": "threshold", "params": {"metric": "accuracy", "op": "<", "value": 1}}, "rule name 'accuracy-low' is declared twice"),
        ("/api/v1/projects/churn/rules/r2", {"kind": "nope"}, "unknown rule kind 'nope'"),
        ("/api/v1/projects/churn/rules/r3", {"kind": "threshold", "projects": ["vision"], "params": {}}, "the project is the one in the URL"),
        ("/api/v1/projects/churn/ignores/CVE-1", {"reason": "", "expires": "2027-01-01"}, "ignore.reason"),
    ]  # fmt: skip
    for url, body, fragment in cases:
        response = client.put(url, json=body)
        assert response.status_code == 422, (url, response.text)
        assert fragment in response.text, (url, response.text)
        assert str(runtime.settings.config) not in response.text, "a refused change names no file"
    # an owner's refused change says nothing about the file: the reload gauge stays at 1
    assert runtime.metrics.get_sample_value("mlmon_config_last_reload_successful") == 1
    assert runtime.config is before and client.get("/api/v1/projects/churn/settings").json() == []
    assert client.put("/api/v1/projects/nope/budget", json={"amount": 1}).status_code == 404
    other = client.put("/api/v1/projects/vision/budget", json={"amount": 1})
    assert other.status_code == 404, "a token scoped to churn learns nothing of vision"
