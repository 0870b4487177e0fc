"""Rule kinds of the spend family. Adding one: its module here, then one line in KINDS."""

from __future__ import annotations

from typing import Any

from alerts.kinds.base import RuleKind
from alerts.kinds.spend import budget, idle_gpu, spend_change

KINDS: tuple[RuleKind[Any], ...] = (budget.KIND, spend_change.KIND, idle_gpu.KIND)
