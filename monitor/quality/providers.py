"""Data providers the quality rule kinds read through `RuleContext.extra`."""

from __future__ import annotations

from monitor.store.provided import Provider

PROVIDERS: dict[str, Provider] = {}
