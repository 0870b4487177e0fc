"""Data providers the stack rule kinds read through `RuleContext.extra`.

`stack`: {project: ProjectStack} for every project the evaluation covers, read in three queries
(projects, open findings, the advisory feed), so a rule costs nothing per project beyond a dict
lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from monitor.stack.view import ProjectStack, project_views
from monitor.store.provided import DataKey, Provider
from monitor.store.store import Store

STACK: DataKey[ProjectStack] = DataKey("stack")


def stack_provider(store: Store, projects: frozenset[str], now: datetime) -> Mapping[str, Any]:
    return project_views(store.engine, projects)


PROVIDERS: dict[str, Provider] = {STACK.name: stack_provider}
