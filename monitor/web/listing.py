"""Sorting, filtering and paging the overview's scorecards on the server (query parameters). Pure.

Server-side so the page works without JavaScript, links can be shared, and tests read the order
from the DOM. Projects without a value for the sort key go last in either direction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from packaging.version import InvalidVersion, Version

from monitor.core.errors import InvalidInput, Issue
from monitor.views.scorecard import FLAGS, Scorecard
from monitor.views.verdicts import Status

PAGE_SIZES = (25, 50, 100, 250, 1000)
DEFAULT_PAGE_SIZE = 100
_STATUS_RANK = {Status.BAD: 3, Status.WARN: 2, Status.OK: 1, Status.NONE: 0}


def _torch(card: Scorecard) -> Version | None:
    if card.stack.torch is None:
        return None
    try:
        return Version(card.stack.torch)
    except InvalidVersion:
        return None


SortKey = Callable[[Scorecard], Any]

SORTS: dict[str, tuple[str, SortKey]] = {
    "project": ("project", lambda c: c.project),
    "team": ("team", lambda c: (c.team or "").lower() or None),
    "owners": ("number of owners", lambda c: len(c.owners)),
    "health": ("worst status", lambda c: _STATUS_RANK[c.worst]),
    "quality": ("margin to the success target", lambda c: c.quality.margin),
    "baseline": ("difference to the baseline", lambda c: c.quality.delta),
    "spend": ("share of the budget spent", lambda c: c.spend.used),
    "forecast": ("forecast share of the budget", lambda c: c.spend.forecast_used),
    "tco": ("TCO to date", lambda c: c.spend.tco),
    "efficiency": ("GPU efficiency", lambda c: c.spend.efficiency),
    "torch": ("torch version", _torch),
    "findings": ("open findings (overdue, then by severity)", lambda c: c.stack.weight if c.stack.reconciled else None),
    "alerts": ("firing alerts", lambda c: (c.alerts.critical, c.alerts.firing, c.alerts.pending)),
    "flags": ("red flags", lambda c: len(c.flags)),
    "sources": ("failing sources", lambda c: (c.sources_failing, c.sources_never)),
}
STATUS_FILTERS = ("bad", "warn", "ok", "none")


@dataclass(frozen=True)
class OverviewQuery:
    sort: str = "health"
    descending: bool = True
    q: str = ""
    flag: str = ""
    status: str = ""
    team: str = ""
    page: int = 1
    per_page: int = DEFAULT_PAGE_SIZE

    def link(self, **changes: Any) -> str:
        """The query string of this query with some fields changed (a new sort or filter resets the page)."""
        values = {**self.__dict__, **changes}
        if "page" not in changes:
            values["page"] = 1
        params = {
            "sort": values["sort"],
            "dir": "desc" if values["descending"] else "asc",
            "q": values["q"],
            "flag": values["flag"],
            "status": values["status"],
            "team": values["team"],
            "page": str(values["page"]) if values["page"] != 1 else "",
            "per_page": str(values["per_page"]) if values["per_page"] != DEFAULT_PAGE_SIZE else "",
        }
        return "?" + urlencode({k: v for k, v in params.items() if v})

    def sorted_by(self, key: str) -> str:
        """The link of a column header: sort by it, or flip the direction when it is the sort already."""
        descending = not self.descending if key == self.sort else key not in ("project", "team", "torch")
        return self.link(sort=key, descending=descending)


def _bad(name: str, why: str) -> InvalidInput:
    return InvalidInput([Issue(name, why, field=name)], f"invalid {name}")


def parse_query(params: Mapping[str, str]) -> OverviewQuery:
    """The overview's query parameters, or InvalidInput naming the parameter and what was expected."""
    sort = params.get("sort") or "health"
    if sort not in SORTS:
        raise _bad("sort", f"unknown sort {sort!r}; expected one of {', '.join(SORTS)}")
    direction = params.get("dir") or ("asc" if sort in ("project", "team", "torch") else "desc")
    if direction not in ("asc", "desc"):
        raise _bad("dir", f"expected asc or desc, got {direction!r}")
    flag = params.get("flag") or ""
    if flag and flag != "any" and flag not in FLAGS:
        raise _bad("flag", f"unknown flag {flag!r}; expected any or one of {', '.join(FLAGS)}")
    status = params.get("status") or ""
    if status and status not in STATUS_FILTERS:
        raise _bad("status", f"expected one of {', '.join(STATUS_FILTERS)}, got {status!r}")
    try:
        page = int(params.get("page") or 1)
        per_page = int(params.get("per_page") or DEFAULT_PAGE_SIZE)
    except ValueError:
        raise _bad("page", "page and per_page must be whole numbers") from None
    if page < 1:
        raise _bad("page", f"pages start at 1, got {page}")
    if per_page not in PAGE_SIZES:
        raise _bad("per_page", f"expected one of {', '.join(map(str, PAGE_SIZES))}, got {per_page}")
    return OverviewQuery(
        sort=sort,
        descending=direction == "desc",
        q=(params.get("q") or "").strip()[:200],
        flag=flag,
        status=status,
        team=(params.get("team") or "").strip()[:200],
        page=page,
        per_page=per_page,
    )


def _matches(card: Scorecard, query: OverviewQuery) -> bool:
    if query.q:
        needle = query.q.lower()
        haystack = " ".join([card.project, card.name, card.team or "", *card.owners]).lower()
        if needle not in haystack:
            return False
    if query.team and (card.team or "") != query.team:
        return False
    if query.flag == "any" and not card.flags:
        return False
    if query.flag and query.flag != "any" and query.flag not in card.flags:
        return False
    return not query.status or card.worst.value == query.status


def order(cards: Sequence[Scorecard], sort: str, descending: bool) -> list[Scorecard]:
    """Sorted by the key, projects without a value last (by id), ties by id."""
    key = SORTS[sort][1]
    keyed = [(key(c), c) for c in cards]
    present = [(k, c) for k, c in keyed if k is not None and not (isinstance(k, float) and math.isnan(k))]
    missing = sorted((c for k, c in keyed if k is None or (isinstance(k, float) and math.isnan(k))),
                     key=lambda c: c.project)  # fmt: skip
    present.sort(key=lambda kc: kc[1].project)
    present.sort(key=lambda kc: kc[0], reverse=descending)
    return [c for _, c in present] + missing


@dataclass
class Listing:
    query: OverviewQuery
    rows: list[Scorecard]
    matched: int
    total: int
    pages: int
    flag_counts: dict[str, int] = field(default_factory=dict)
    status_counts: dict[str, int] = field(default_factory=dict)
    teams: list[str] = field(default_factory=list)


def listing(cards: Sequence[Scorecard], query: OverviewQuery) -> Listing:
    flag_counts = dict.fromkeys(FLAGS, 0)
    status_counts = dict.fromkeys(STATUS_FILTERS, 0)
    teams: set[str] = set()
    for card in cards:
        for flag in card.flags:
            flag_counts[flag] += 1
        status_counts[card.worst.value] += 1
        if card.team:
            teams.add(card.team)
    chosen = order([c for c in cards if _matches(c, query)], query.sort, query.descending)
    pages = max(1, math.ceil(len(chosen) / query.per_page))
    start = (min(query.page, pages) - 1) * query.per_page
    return Listing(
        query,
        chosen[start : start + query.per_page],
        len(chosen),
        len(cards),
        pages,
        flag_counts,
        status_counts,
        sorted(teams),
    )
