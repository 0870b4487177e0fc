"""Routing and grouping, pure: which receivers an alert goes to, and in which notification group.

Every alert goes to the root route's receiver (normally its project's owners) and to every
matching child route, in order, stopping after the first match unless it says `continue`.
Groups are keyed by route, receiver and the values of the route's `group_by` labels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from monitor.config.alerting import RootRoute, parse_matcher_list
from monitor.core.matchers import Matcher, matches_all

ALL_LABELS = "..."


@dataclass(frozen=True, slots=True)
class Route:
    id: str
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    continue_: bool = False


class RouteError(ValueError):
    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(message)


def compile_routes(root: RootRoute) -> list[Route]:
    """Routes in evaluation order: the root (if it has a receiver), then the children."""
    gw = root.group_wait if root.group_wait is not None else timedelta(seconds=30)
    gi = root.group_interval if root.group_interval is not None else timedelta(minutes=5)
    ri = root.repeat_interval if root.repeat_interval is not None else timedelta(hours=4)
    group_by = tuple(dict.fromkeys(["project", *root.group_by])) if ALL_LABELS not in root.group_by else (ALL_LABELS,)
    routes: list[Route] = []
    if root.receiver:
        routes.append(Route("root", root.receiver, (), group_by, gw, gi, ri))
    for index, child in enumerate(root.routes):
        routes.append(
            Route(
                id=f"routes[{index}]",
                receiver=child.receiver,
                matchers=parse_matcher_list(child.matchers),
                group_by=tuple(child.group_by) if child.group_by is not None else group_by,
                group_wait=child.group_wait if child.group_wait is not None else gw,
                group_interval=child.group_interval if child.group_interval is not None else gi,
                repeat_interval=child.repeat_interval if child.repeat_interval is not None else ri,
                continue_=child.continue_,
            )
        )
    for route in routes:
        where = "route" if route.id == "root" else f"route.{route.id}"
        _check_timers(route, where)
    return routes


def _check_timers(route: Route, where: str) -> None:
    gi, ri = route.group_interval.total_seconds(), route.repeat_interval.total_seconds()
    if gi <= 0:
        raise RouteError(f"{where}.group_interval", "group_interval must be positive")
    if ri < gi or round(ri * 1000) % round(gi * 1000) != 0:
        raise RouteError(
            f"{where}.repeat_interval",
            f"repeat_interval ({ri:g}s) must be a multiple of group_interval ({gi:g}s): repeats happen "
            "only on group_interval ticks, so any other value would be rounded up silently",
        )


def routes_for(labels: Mapping[str, str], routes: Sequence[Route]) -> list[Route]:
    chosen: list[Route] = []
    children_done = False
    for route in routes:
        if route.id == "root":
            chosen.append(route)
            continue
        if children_done:
            break
        if matches_all(route.matchers, labels):
            chosen.append(route)
            children_done = not route.continue_
    return chosen


def group_labels(route: Route, labels: Mapping[str, str]) -> dict[str, str]:
    if route.group_by == (ALL_LABELS,):
        return dict(labels)
    return {name: labels.get(name, "") for name in route.group_by}


def group_key(route: Route, labels: Mapping[str, str]) -> str:
    text = json.dumps([route.id, route.receiver, group_labels(route, labels)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def display_group_key(route: Route, labels: Mapping[str, str]) -> str:
    """Alertmanager's groupKey, `<route path>:<group labels>`: `{}:{...}` for the root route,
    `{}/{severity="critical"}:{...}` for a child (what webhook receivers see)."""
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels(route, labels).items()))
    path = "{}" if route.id.startswith("root") else "{}/{" + ",".join(str(m) for m in route.matchers) + "}"
    return f"{path}:{{{inner}}}"
