"""promtool's expanding series notation, for rule tests.

    "1 2 3"       three values            "1+1x3"   -> 1 2 3 4      "5-2x2" -> 5 3 1
    "0.9x3"       -> 0.9 0.9 0.9 0.9      "_"       -> no sample    "_x3"   -> three missing
    "stale"       -> a staleness marker; values after it are ordinary samples again

`a+bxN` is built as promtool builds it, by adding `b` to the previous value N times (so
`0.5+0.1x4` ends in 0.8999999999999999, not 0.9). Written by hand: no Python library implements
this notation; the grammar is one token pattern.
"""

from __future__ import annotations

import re
from typing import Final


class _Stale:
    """promtool's staleness marker (a special NaN in Prometheus's storage)."""

    def __repr__(self) -> str:
        return "STALE"


STALE: Final = _Stale()
MAX_STEPS = 100_000
"""Steps one series may expand to: a typo like `1x1000000000` must fail, not fill the memory."""

_TOKEN = re.compile(
    r"(?P<missing>_)(?:x(?P<mcount>\d+))?$"
    r"|(?P<stale>stale)$"
    r"|(?P<start>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN)"
    r"(?:(?P<sign>[-+])(?P<step>\d+\.?\d*(?:[eE][-+]?\d+)?))?(?:x(?P<count>\d+))?$"
)


def expand(values: str) -> list[float | _Stale | None]:
    """Values at successive intervals; None where no sample exists, STALE for a staleness marker.
    Raises ValueError naming the token."""
    out: list[float | _Stale | None] = []
    for token in values.split():
        match = _TOKEN.match(token)
        if not match:
            raise ValueError(
                f"cannot read {token!r} in series values {values!r}: expected a number, "
                "a+bxN, a-bxN, axN, _, _xN or stale"
            )
        count_text = match["mcount"] or match["count"]
        if count_text is not None and len(out) + int(count_text) > MAX_STEPS:
            raise ValueError(f"{token!r}: series values expand to more than {MAX_STEPS:,} steps")
        if match["missing"]:
            out.extend([None] * int(match["mcount"] or 1))
        elif match["stale"]:
            out.append(STALE)
        else:
            start = float(match["start"])
            count = int(match["count"]) if match["count"] is not None else None
            if count is None:
                if match["sign"]:
                    raise ValueError(f"{token!r}: a step needs a count, as in 1+1x3")
                out.append(start)
                continue
            step = float(match["step"] or 0) * (-1 if match["sign"] == "-" else 1)
            value = start
            out.append(value)
            for _ in range(count):
                value += step
                out.append(value)
    return out
