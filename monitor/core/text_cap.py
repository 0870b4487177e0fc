"""One bound on error texts that are stored or logged.

A hostile input can make an error message arbitrarily large (a YAML alias bomb quoted back, a
parser echoing a 40 MB line); stored in every run's row and logged on every run, it would fill the
database and the log. Every error text that reaches the store or the log passes through here.
"""

from __future__ import annotations

MAX_ERROR_CHARS = 4000
_MARK = " ... [{:,} more characters cut]"
_SLACK = 64
"""Room for the note, so that capping a capped text changes nothing."""


def cap_text(text: str | None, limit: int = MAX_ERROR_CHARS) -> str | None:
    """`text` cut to `limit` characters plus a note saying how much was cut. Idempotent: a text
    capped once (the runner caps, then the store) passes unchanged."""
    if text is None or len(text) <= limit + _SLACK:
        return text
    return text[:limit] + _MARK.format(len(text) - limit)
