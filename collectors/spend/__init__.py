"""Source kinds of the spend family. Adding one: its module here, then one line in KINDS."""

from __future__ import annotations

from typing import Any

from collectors.base import SourceKind
from collectors.spend import dcgm, focus, opencost

KINDS: tuple[SourceKind[Any], ...] = (focus.KIND, opencost.KIND, dcgm.KIND)
