"""Data providers the stack rule kinds read through `RuleContext.extra`.

`stack`: {project: ProjectStack} for every project the evaluation covers, read in three queries
(projects, open findings, the advisory feed), so a rule costs nothing per project beyond a dict
lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from alerts.engine import Extra
from monitor.stack.view import project_views
from monitor.store.store import Store

PROVIDER = "stack"


def stack_provider(store: Store, projects: frozenset[str], now: datetime) -> Mapping[str, Any]:
    return project_views(store.engine, projects)


PROVIDERS: dict[str, Extra] = {PROVIDER: stack_provider}
