"""Source kinds. Adding one: write its module, then add it to REGISTRY below."""

from __future__ import annotations

from typing import Any

from collectors import http_json, push, quality, spend, stack
from collectors.base import SourceKind
from monitor.core.registry import by_name

_KINDS: tuple[SourceKind[Any], ...] = (
    push.KIND,
    http_json.KIND,
    *stack.KINDS,
    *quality.KINDS,
    *spend.KINDS,
)
REGISTRY: dict[str, SourceKind[Any]] = by_name(_KINDS, lambda kind: kind.name, "source kind")
