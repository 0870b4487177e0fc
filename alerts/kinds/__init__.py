"""Rule kinds. Adding one: write its module, then add it to REGISTRY below."""

from __future__ import annotations

from typing import Any

from alerts.kinds import absent, quality, source_down, spend, stack, threshold
from alerts.kinds.base import RuleKind

_KINDS: tuple[RuleKind[Any], ...] = (
    threshold.KIND,
    absent.KIND,
    source_down.KIND,
    *stack.KINDS,
    *quality.KINDS,
    *spend.KINDS,
)
REGISTRY: dict[str, RuleKind[Any]] = {kind.name: kind for kind in _KINDS}
