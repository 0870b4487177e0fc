"""Rule kinds of the quality family. Adding one: its module here, then one line in KINDS."""

from __future__ import annotations

from typing import Any

from alerts.kinds.base import RuleKind
from alerts.kinds.quality import change, distribution, drop

KINDS: tuple[RuleKind[Any], ...] = (drop.KIND, change.KIND, distribution.KIND)
