"""Rule kinds of the stack family. Adding one: its module here, then one line in KINDS."""

from __future__ import annotations

from typing import Any

from alerts.kinds.base import RuleKind
from alerts.kinds.stack import patch_sla, stale, vulnerable

KINDS: tuple[RuleKind[Any], ...] = (vulnerable.KIND, stale.KIND, patch_sla.KIND)
