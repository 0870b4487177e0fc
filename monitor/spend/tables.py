"""Tables of the spend family (created by migration `spend`)."""

from __future__ import annotations

from monitor.store.schema import metadata

__all__ = ["metadata"]
