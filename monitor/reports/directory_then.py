"""Who a project was and who answered for it at a past moment, replayed from the change log.

The configuration is not versioned, but every reload logs what it changed: `project.change`
(with the directory before and after when the name, team or owners changed), `project.create`
and `project.delete`. The first such entry after `as_of` holds the directory in force at
`as_of` as its "before"; a project with none since is as the configuration has it now. A restart
with another file writes no entry: such a change is not replayed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from monitor.reports.audit_inputs import ProjectInfo
from monitor.store.changes import Change

DIRECTORY_ACTIONS = ("project.change", "project.create", "project.delete")


def directory_then(
    now: Sequence[ProjectInfo], changes: Sequence[Change], as_of: datetime, wanted: Sequence[str] | None
) -> list[ProjectInfo]:
    """The projects as they stood at `as_of`: `now` with every later directory change undone, plus
    the projects deleted since (when `wanted` allows them). `changes`: oldest first."""
    first: dict[str, Change] = {}
    for change in changes:
        project = change.project
        if change.at <= as_of or project is None or project in first:
            continue
        if change.action == "project.create" or _before(change) is not None:
            first[project] = change
    out: list[ProjectInfo] = []
    for info in now:
        undone = first.get(info.id)
        before = _before(undone) if undone is not None else None
        out.append(_with_directory(info, before) if before is not None else info)
    known = {info.id for info in now}
    for project, change in first.items():
        before = _before(change)
        if project in known or change.action != "project.delete" or before is None:
            continue
        if wanted is None or project in wanted:
            out.append(_with_directory(ProjectInfo(id=project), before))
    return out


def _before(change: Change) -> Mapping[str, Any] | None:
    found = change.details.get("directory")
    before = found.get("before") if isinstance(found, Mapping) else None
    return before if isinstance(before, Mapping) else None


def _with_directory(info: ProjectInfo, directory: Mapping[str, Any]) -> ProjectInfo:
    owners = directory.get("owners")
    team = directory.get("team")
    return replace(
        info,
        name=str(directory.get("name") or info.id),
        team=team if isinstance(team, str) else None,
        owners=tuple(o for o in owners if isinstance(o, Mapping)) if isinstance(owners, list) else (),
    )
