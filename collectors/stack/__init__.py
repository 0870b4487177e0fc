"""Source kinds of the stack family. Adding one: its module here, then one line in KINDS."""

from __future__ import annotations

from typing import Any

from collectors.base import SourceKind
from collectors.stack import inventory

KINDS: tuple[SourceKind[Any], ...] = inventory.KINDS
