"""Is a drop in a proportion (accuracy, precision, ...) real, given how many examples it was measured on?

Two closed forms, written out with the standard library's `NormalDist` because the SciPy routes
(`binomtest(...).proportion_ci(method="wilson")`, `chi2_contingency` on the 2x2 table) cost
0.4-0.8 ms a call, and a `drop` rule runs one per series per evaluation. The tests check both
against SciPy.

- `two_proportion_p`: one-sided pooled two-proportion z-test, for a current value and a baseline
  that both come with their number of examples.
- `wilson_bounds`: the Wilson score interval of the current value, for a baseline whose number of
  examples is unknown (a fixed target); the drop is significant when the whole interval lies on
  the bad side of the baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class Significance:
    """The outcome of a test: which, its p-value (or None for an interval), and the verdict."""

    test: Literal["two_proportion", "wilson", "none"]
    significant: bool
    p_value: float | None = None
    bound: float | None = None
    """For the Wilson test: the interval's bound on the baseline's side."""


def wilson_bounds(p: float, n: float, confidence: float) -> tuple[float, float]:
    """Two-sided Wilson score interval of a proportion `p` measured on `n` examples."""
    if n <= 0:
        raise ValueError("n must be positive")
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p(current: float, n_current: float, baseline: float, n_baseline: float, worse: str) -> float:
    """One-sided p-value that `current` is worse than `baseline` (pooled two-proportion z-test).

    `worse` is "down" when a lower proportion is worse (accuracy), "up" when higher is worse.
    """
    pooled = (current * n_current + baseline * n_baseline) / (n_current + n_baseline)
    var = pooled * (1 - pooled) * (1 / n_current + 1 / n_baseline)
    if var <= 0:
        return 1.0 if current == baseline else 0.0
    z = (current - baseline) / math.sqrt(var)
    return _NORMAL.cdf(z) if worse == "down" else 1 - _NORMAL.cdf(z)


def is_proportion(*values: float) -> bool:
    return all(0.0 <= v <= 1.0 for v in values)


def drop_significance(
    current: float, n_current: float | None, baseline: float, n_baseline: float | None, worse: str, alpha: float
) -> Significance:
    """Whether `current` is significantly worse than `baseline` at level `alpha` (one-sided).

    With both counts: a two-proportion z-test. With the current count only: the one-sided Wilson
    bound of the current value must lie beyond the baseline. Without counts, or for values that
    are not proportions, no test applies.
    """
    if n_current is None or n_current <= 0 or not is_proportion(current, baseline):
        return Significance("none", True)
    if n_baseline is not None and n_baseline > 0:
        p = two_proportion_p(current, n_current, baseline, n_baseline, worse)
        return Significance("two_proportion", p < alpha, p_value=p)
    low, high = wilson_bounds(current, n_current, 1 - 2 * alpha)
    bound = high if worse == "down" else low
    significant = bound < baseline if worse == "down" else bound > baseline
    return Significance("wilson", significant, bound=bound)
