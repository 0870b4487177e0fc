"""Numbers in notifications read as people write them (no `1.051e+07` for ten million seconds)."""

from __future__ import annotations

import math

import pytest

from monitor.core.numbers import readable


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.051e7, "10,510,000"),
        (0.8, "0.8"),
        (0.90141234, "0.9014"),
        (-0.0606, "-0.0606"),
        (1234.5678, "1,235"),
        (42.0, "42"),
        (0.0, "0"),
        (1.234e-5, "1.234e-05"),
        (2e15, "2e+15"),
        (math.inf, "inf"),
    ],
)
def test_readable(value: float, text: str) -> None:
    assert readable(value) == text
