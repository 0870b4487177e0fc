"""Data providers the quality rule kinds read through `RuleContext.extra`."""

from __future__ import annotations

from alerts.engine import Extra

PROVIDERS: dict[str, Extra] = {}
