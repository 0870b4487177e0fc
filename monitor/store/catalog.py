"""Every table of the store: the foundation's and each family's (what Alembic compares against)."""

from __future__ import annotations

import monitor.auth.tables
import monitor.quality.tables
import monitor.spend.tables
import monitor.stack.tables
import monitor.store.audit_tables
from monitor.store.schema import metadata

__all__ = ["metadata"]

_FAMILIES = (
    monitor.stack.tables,
    monitor.quality.tables,
    monitor.spend.tables,
    monitor.auth.tables,
    monitor.store.audit_tables,
)
