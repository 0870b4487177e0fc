"""The audit report as JSON: the document itself (see docs/reports.md for its fields).

orjson encodes the document several times faster than the standard library (a report of 1,000
projects is tens of MB); where orjson is not installed the standard library writes the same JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

try:
    import orjson

    HAVE_ORJSON = True
except ImportError:  # pragma: no cover - a dependency; a missing wheel must not break reports
    HAVE_ORJSON = False


def stdlib_json(doc: Mapping[str, Any], *, indent: bool = False) -> bytes:
    if indent:
        return json.dumps(doc, indent=2, ensure_ascii=False).encode()
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def render_json_bytes(doc: Mapping[str, Any], *, indent: bool = False) -> bytes:
    """UTF-8 JSON: compact by default (the API), indented by two spaces for people (the CLI)."""
    if HAVE_ORJSON:
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2 if indent else 0)
    return stdlib_json(doc, indent=indent)


def render_json(doc: Mapping[str, Any], *, indent: bool = False) -> str:
    return render_json_bytes(doc, indent=indent).decode()
