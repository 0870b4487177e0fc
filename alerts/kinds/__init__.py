"""Rule kinds. Adding one: write its module, then add it to REGISTRY below."""

from __future__ import annotations

from typing import Any

from alerts.kinds import absent, quality, source_down, spend, stack, threshold
from alerts.kinds.base import RuleKind
from monitor.core.registry import by_name

_KINDS: tuple[RuleKind[Any], ...] = (
    threshold.KIND,
    absent.KIND,
    source_down.KIND,
    *stack.KINDS,
    *quality.KINDS,
    *spend.KINDS,
)
REGISTRY: dict[str, RuleKind[Any]] = by_name(_KINDS, lambda kind: kind.name, "rule kind")
