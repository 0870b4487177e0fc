"""Routing, grouping decisions, silences, inhibition, templates and the series notation (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alerts.grouping import flush, new_group
from alerts.notation import expand
from alerts.routing import RouteError, compile_routes, group_key, routes_for
from alerts.silences import FiringSource, Silence, SilenceState, inhibited_by, silenced_by
from alerts.templates import render, template_problems
from monitor.config.alerting import InhibitConfig, RootRoute, RouteConfig
from monitor.core.matchers import parse_matchers

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def _routes(**root: object) -> RootRoute:
    return RootRoute.model_validate(
        {
            "receiver": "owners",
            "group_wait": "30s",
            "routes": [
                {"matchers": ['severity="critical"'], "receiver": "oncall", "group_wait": "0s", "continue": True},
                {"matchers": ['team=~"ml.*"'], "receiver": "ml-lead"},
                {"matchers": ['severity=~".+"'], "receiver": "catch-all"},
            ],
            **root,
        }
    )


def test_owners_always_plus_matching_routes() -> None:
    routes = compile_routes(_routes())
    names = lambda labels: [r.receiver for r in routes_for(labels, routes)]  # noqa: E731
    assert names({"severity": "critical", "team": "ml-platform"}) == ["owners", "oncall", "ml-lead"]
    assert names({"severity": "warning", "team": "ml"}) == ["owners", "ml-lead"]
    assert names({"severity": "warning"}) == ["owners", "catch-all"]
    assert names({}) == ["owners"]
    oncall = routes[1]
    assert oncall.group_wait == timedelta(0) and oncall.repeat_interval == timedelta(hours=4)
    assert routes[0].group_by[0] == "project", "the owners route always groups by project"


def test_repeat_interval_must_be_a_multiple_of_group_interval() -> None:
    with pytest.raises(
        RouteError, match=r"repeat_interval \(600s\) must be a multiple of group_interval \(240s\)"
    ) as info:
        compile_routes(RootRoute.model_validate({"receiver": "x", "group_interval": "4m", "repeat_interval": "10m"}))
    assert info.value.where == "route.repeat_interval"
    bad_child = RootRoute(receiver="x", routes=[RouteConfig(receiver="y", group_interval=timedelta(minutes=7))])
    with pytest.raises(RouteError) as child:
        compile_routes(bad_child)
    assert child.value.where == "route.routes[0].repeat_interval"


def test_group_keys() -> None:
    route = compile_routes(_routes())[0]
    a = {"project": "churn", "alertname": "acc", "model": "v1"}
    b = {**a, "model": "v2"}
    assert group_key(route, a) == group_key(route, b)
    assert group_key(route, a) != group_key(route, {**a, "project": "vision"})


FLUSH_CASES = [
    # sent firing, firing now, resolved now, acked, minutes since last send, expected reason
    ("first notification", set(), {"a"}, set(), set(), None, "new_alert"),
    ("nothing new", {"a"}, {"a"}, set(), set(), 10, None),
    ("a new alert joins", {"a"}, {"a", "b"}, set(), set(), 10, "new_alert"),
    ("everything resolved", {"a"}, set(), {"a"}, set(), 10, "resolved"),
    ("part resolved", {"a", "b"}, {"b"}, {"a"}, set(), 10, "resolved"),
    ("repeat after repeat_interval", {"a"}, {"a"}, set(), set(), 240, "repeat"),
    ("acked: no repeat", {"a"}, {"a"}, set(), {"a"}, 240, None),
    ("partly acked: repeat", {"a", "b"}, {"a", "b"}, set(), {"a"}, 240, "repeat"),
    ("resolved within group_wait is never announced", set(), set(), {"a"}, set(), None, None),
]


@pytest.mark.parametrize(
    ("name", "sent", "firing", "resolved", "acked", "since", "reason"), FLUSH_CASES, ids=[c[0] for c in FLUSH_CASES]
)
def test_flush_decisions(
    name: str,
    sent: set[str],
    firing: set[str],
    resolved: set[str],
    acked: set[str],
    since: int | None,
    reason: str | None,
) -> None:
    route = compile_routes(_routes())[0]
    group = new_group("k", route, {"project": "churn"}, T0)
    now = T0 + timedelta(hours=10)
    if since is not None:
        group = replace(group, sent_firing=frozenset(sent), last_sent_at=now - timedelta(minutes=since))
    result = flush(group, frozenset(firing), frozenset(resolved), frozenset(acked), route, True, now)
    assert result.reason == reason
    assert result.state.next_flush_at == now + route.group_interval
    if reason is not None:
        assert result.state.sent_firing == frozenset(firing) and result.state.last_sent_at == now


def test_silences() -> None:
    silence = Silence(
        "s1", parse_matchers('project="churn", severity=~"warn.*"'), T0, T0 + timedelta(hours=1), "ada", "deploy"
    )
    labels = {"project": "churn", "severity": "warning"}
    assert silence.state(T0 - timedelta(seconds=1)) is SilenceState.PENDING
    assert silenced_by(labels, [silence], T0 + timedelta(minutes=5)) == ["s1"]
    assert silenced_by({**labels, "severity": "critical"}, [silence], T0) == []
    assert (
        silenced_by(labels, [silence], T0 + timedelta(hours=1)) == []
        and silence.state(T0 + timedelta(hours=1)) is SilenceState.EXPIRED
    )


def test_inhibition() -> None:
    down = FiringSource("down", {"alertname": "source-down", "project": "churn", "source": "eval"}, "churn", "eval")
    other_project = FiringSource(
        "down2", {"alertname": "source-down", "project": "vision", "source": "eval"}, "vision", "eval"
    )
    acc = {"alertname": "accuracy-low", "project": "churn"}
    assert inhibited_by(acc, "churn", None, [down, other_project], [], "acc") == ["down"]
    assert inhibited_by(acc, "churn", ["billing"], [down], [], "acc") == [], "depends on another source"
    assert inhibited_by(acc, "churn", ["eval"], [down], [], "acc") == ["down"]
    assert inhibited_by(down.labels, "churn", None, [down], [], "down") == [], "never inhibits itself"
    rule = InhibitConfig(
        source_matchers=['severity="critical"'], target_matchers=['severity="warning"'], equal=["project"]
    )
    crit = FiringSource("crit", {"alertname": "x", "project": "churn", "severity": "critical"}, "churn")
    assert inhibited_by({"project": "churn", "severity": "warning"}, "churn", [], [crit], [rule], "w") == ["crit"]
    assert inhibited_by({"project": "vision", "severity": "warning"}, "vision", [], [crit], [rule], "w") == []


def test_templates() -> None:
    rendered = render(
        {
            "summary": "{{ project.name }}: {{ value | percent }} for {{ details.age | duration }}",
            "bad": "{{ nope.x }}",
        },
        {"project": {"name": "Churn"}, "value": 0.8512, "details": {"age": 7260}},
    )
    assert rendered["summary"] == "Churn: 85.1% for 2h1m"
    assert rendered["bad"].startswith("<error rendering bad: UndefinedError")
    assert template_problems("{{ labels.model }} {{ valu }}") == [
        "undefined template variable 'valu'; known: details, labels, params, project, rule, state, value"
    ]
    assert template_problems("{{ value ")[0].startswith("template syntax error")
    sandboxed = render({"x": "{{ ''.__class__.__mro__ }}"}, {})
    assert sandboxed["x"].startswith("<error rendering x: SecurityError")


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1 2 3", [1, 2, 3]),
        ("1+1x3", [1, 2, 3, 4]),
        ("5-2x2", [5, 3, 1]),
        ("0.9x2", [0.9, 0.9, 0.9]),
        ("1 _x2 3", [1, None, None, 3]),
        ("1 _ stale 4", [1, None, None]),
        ("-2+4x3", [-2, 2, 6, 10]),
    ],
)
def test_series_notation(text: str, values: list[float | None]) -> None:
    assert expand(text) == values


def test_series_notation_errors() -> None:
    with pytest.raises(ValueError, match="cannot read 'abc'"):
        expand("1 abc")
    with pytest.raises(ValueError, match="a step needs a count"):
        expand("1+1")
