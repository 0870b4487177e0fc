"""The audit report as JSON: the document itself (see docs/reports.md for its fields)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def render_json(doc: Mapping[str, Any], *, indent: int | None = None) -> str:
    """Compact by default (the API); `indent` for people (the CLI)."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(doc, indent=indent, separators=separators, ensure_ascii=False)
