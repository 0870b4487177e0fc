"""Sorting, filtering and paging the overview (pure), and the query parameters' errors."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from monitor.core.errors import InvalidInput
from monitor.views.scorecard import AlertCell, QualityCell, Scorecard, SpendCell, StackCell
from monitor.views.verdicts import Status
from monitor.web.listing import listing, order, parse_query


def card(
    project: str,
    *,
    used: float | None = None,
    team: str | None = None,
    owners: tuple[str, ...] = ("Ada", "Bob"),
    flags: tuple[str, ...] = (),
    torch: str | None = None,
    firing: int = 0,
    status: Status = Status.OK,
) -> Scorecard:
    budget = 1000.0 if used is not None else None
    spent = used * 1000 if used is not None else None
    return Scorecard(
        project=project,
        name=project.title(),
        team=team,
        owners=owners,
        quality=QualityCell(None, None, None, None, None, 0, None, False, status),
        spend=SpendCell("USD", budget, None, spent, None, None, None, None, None, 0.0, None, (), Status.OK),
        stack=StackCell(torch, None, {}, 0, 0, torch is not None, Status.OK),
        alerts=AlertCell(firing, 0, 0, Status.WARN if firing else Status.OK),
        flags=flags,
        worst=status if status is Status.BAD else Status.WARN if firing else Status.OK,
    )


CARDS = [
    card("alpha", used=0.5, team="growth", torch="2.10.0"),
    card("beta", used=1.2, team="search", owners=("Grace",), flags=("single_owner",), torch="2.9.1"),
    card("gamma", team="growth", owners=(), flags=("no_owner", "no_budget"), firing=2, status=Status.BAD),
    card("delta", used=0.5, torch="2.10.0rc1"),
]


def test_sorting_puts_projects_without_a_value_last_either_way() -> None:
    assert [c.project for c in order(CARDS, "spend", True)] == ["beta", "alpha", "delta", "gamma"]
    assert [c.project for c in order(CARDS, "spend", False)] == ["alpha", "delta", "beta", "gamma"]
    # by version, not text
    assert [c.project for c in order(CARDS, "torch", False)] == ["beta", "delta", "alpha", "gamma"]
    assert [c.project for c in order(CARDS, "health", True)][0] == "gamma"
    assert [c.project for c in order(CARDS, "alerts", True)][0] == "gamma"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"flag": "no_owner"}, ["gamma"]),
        ({"flag": "any"}, ["beta", "gamma"]),
        ({"q": "GRACE"}, ["beta"]),
        ({"q": "gam"}, ["gamma"]),
        ({"team": "growth", "sort": "project", "dir": "asc"}, ["alpha", "gamma"]),
        ({"status": "bad"}, ["gamma"]),
    ],
)
def test_filters(params: dict[str, str], expected: list[str]) -> None:
    result = listing(CARDS, parse_query({"sort": "project", "dir": "asc", **params}))
    assert [c.project for c in result.rows] == expected
    assert result.total == 4 and result.flag_counts["no_owner"] == 1 and result.teams == ["growth", "search"]


def test_paging_and_links_keep_the_query() -> None:
    many = [card(f"p{i:03d}", used=i / 100) for i in range(60)]
    query = parse_query({"sort": "spend", "dir": "asc", "per_page": "25", "page": "3", "q": "p0"})
    result = listing(many, query)
    assert result.pages == 3 and [c.project for c in result.rows] == [f"p0{i}" for i in range(50, 60)]
    link = parse_qs(query.link(page=2)[1:])
    assert link == {"sort": ["spend"], "dir": ["asc"], "q": ["p0"], "page": ["2"], "per_page": ["25"]}
    assert "page" not in parse_qs(query.link(flag="no_owner")[1:])  # a new filter starts at page 1
    assert parse_qs(query.sorted_by("spend")[1:])["dir"] == ["desc"]  # the same column again flips it
    beyond = listing(many, parse_query({"page": "9", "per_page": "25"}))
    assert len(beyond.rows) == 10  # the last page, not an empty one


@pytest.mark.parametrize(
    ("params", "field"),
    [({"sort": "size"}, "sort"), ({"dir": "up"}, "dir"), ({"flag": "x"}, "flag"), ({"status": "red"}, "status"),
     ({"page": "0"}, "page"), ({"page": "x"}, "page"), ({"per_page": "33"}, "per_page")],
)  # fmt: skip
def test_bad_parameters_name_themselves(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_query(params)
    assert caught.value.issues[0].field == field
