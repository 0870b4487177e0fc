"""promtool's expanding series notation, for rule tests.

    "1 2 3"       three values            "1+1x3"   -> 1 2 3 4      "5-2x2" -> 5 3 1
    "0.9x3"       -> 0.9 0.9 0.9 0.9      "_"       -> no sample    "_x3"   -> three missing
    "stale"       -> the series ends (no more samples)

Written by hand: no Python library implements this notation; the grammar is one token pattern.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"(?P<missing>_)(?:x(?P<mcount>\d+))?$"
    r"|(?P<stale>stale)$"
    r"|(?P<start>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN)"
    r"(?:(?P<sign>[-+])(?P<step>\d+\.?\d*(?:[eE][-+]?\d+)?))?(?:x(?P<count>\d+))?$"
)


def expand(values: str) -> list[float | None]:
    """Values at successive intervals; None where no sample exists. Raises ValueError naming the token."""
    out: list[float | None] = []
    for token in values.split():
        match = _TOKEN.match(token)
        if not match:
            raise ValueError(f"cannot read {token!r} in series values {values!r}")
        if match["missing"]:
            out.extend([None] * int(match["mcount"] or 1))
        elif match["stale"]:
            out.append(None)
            break
        else:
            start = float(match["start"])
            count = int(match["count"]) if match["count"] is not None else None
            if count is None:
                if match["sign"]:
                    raise ValueError(f"{token!r}: a step needs a count, as in 1+1x3")
                out.append(start)
                continue
            step = float(match["step"] or 0) * (-1 if match["sign"] == "-" else 1)
            out.extend(start + i * step for i in range(count + 1))
    return out
