"""Tables of the spend family (created by migration `spend`): none.

Spend is stored as samples, file reads as events, per-source state in checkpoints (see
monitor/spend/series.py and migration 0004).
"""

from __future__ import annotations

from monitor.store.schema import metadata

__all__ = ["metadata"]
