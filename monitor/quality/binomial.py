"""A binomial CUSUM for proportions with a known n (accuracy over n examples, or 0/1 outcomes).

The normal CUSUM of monitor.quality.detector assumes normal points. An accuracy computed over n
examples is binomial: on 0/1 outcomes (n = 1) or small n its skew makes the normal detector's
false-alarm budget wrong by 5 to 60 times. This detector scores each point by the log-likelihood
ratio of "the proportion moved by `drop`" against "it is still p0" (Reynolds and Stoumbos 1999):

    llr_down(x of n) = x ln(p1/p0) + (n - x) ln((1 - p1)/(1 - p0)),  p1 = p0 - drop

and accumulates it in a CUSUM per direction. p0 is learnt from the points themselves (pooled
successes over pooled examples; every point joins it once scored, as in a self-starting CUSUM).
The threshold comes from the budget through the Markov-chain approximation of the CUSUM's run
length (Brook and Evans 1972: the statistic on a grid of states, ARL0 = the first entry of
(I - Q)^-1 1), solved for h by bisection; above `NORMAL_N` examples a point's llr is taken as
normal (on a fine grid of its distribution). Siegmund's closed form is not used here: the design
change of a proportion measured on many examples is several sd of a point, where it is far off.

Serially correlated points (a rolling-window accuracy polled more often than its window) are
thinned by the `change` rule before they reach a detector (see alerts.kinds.quality.change).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.linalg import solve_banded
from scipy.special import ndtr
from scipy.stats import binom

from monitor.quality.detector import Change

CELLS = 300
BAND_CELLS = 1000
NORMAL_N = 60
P_STEP = 0.01
"""p0 is rounded to this grid to calibrate the threshold (so a cache holds a few hundred entries)."""


def _llr_steps(p0: float, p1: float, n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    x = np.arange(n + 1, dtype=np.float64)
    steps = x * math.log(p1 / p0) + (n - x) * math.log((1 - p1) / (1 - p0))
    return steps, binom.pmf(x, n, p0)


def _markov_arl(h: float, steps: np.ndarray[Any, Any], probs: np.ndarray[Any, Any]) -> float:
    """Brook-Evans: in-control average run length from 0 of max(0, S + step) crossing h.

    Few distinct steps (0/1 outcomes, small n) make (I - Q) a band matrix: a fine grid solved as a
    band; many (the normal llr of a large n) a coarser dense grid."""
    # Cells small enough that the smallest step moves at least four of them (a step rounded to 0
    # would make state 0 absorbing).
    smallest = float(np.min(np.abs(steps[(np.abs(steps) > 1e-12) & (probs > 1e-15)]), initial=h))
    cells = int(min(max(BAND_CELLS, math.ceil(4 * h / smallest)), 20_000))
    offsets = np.rint(steps / (h / cells)).astype(np.int64)
    lower, upper = max(0, -int(offsets.min())), max(0, int(offsets.max()))
    rows = np.arange(cells)
    if upper == 0:
        return math.inf  # no step up: never crosses
    if lower + upper < cells // 4:
        band = np.zeros((lower + upper + 1, cells))
        band[upper, :] = 1.0
        for offset, p in zip(offsets, probs, strict=True):
            target = rows + offset
            inside = (target > 0) & (target < cells)
            band[upper + rows[inside] - target[inside], target[inside]] -= p
            to_zero = target <= 0
            band[upper + rows[to_zero], 0] -= p  # clipped at 0: state 0, within the lower band
        try:
            return float(solve_banded((lower, upper), band, np.ones(cells))[0])
        except np.linalg.LinAlgError:
            return math.inf
    cells = CELLS
    offsets = np.rint(steps / (h / cells)).astype(np.int64)
    rows = np.arange(cells)
    q = np.zeros((cells, cells))
    for offset, p in zip(offsets, probs, strict=True):
        if p < 1e-15:
            continue
        target = rows + offset
        inside = (target > 0) & (target < cells)
        q[rows[inside], target[inside]] += p
        q[rows[target <= 0], 0] += p
    try:
        return float(np.linalg.solve(np.eye(cells) - q, np.ones(cells))[0])
    except np.linalg.LinAlgError:
        return math.inf


def _normal_steps(mean: float, sd: float) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A normal step distribution on 161 points over +-8 sd (the llr of a point with many examples)."""
    grid = np.linspace(-8.0, 8.0, 161)
    edges = np.concatenate(([-np.inf], (grid[1:] + grid[:-1]) / 2, [np.inf]))
    probs = np.diff(ndtr(edges))
    return mean + sd * grid, probs


@lru_cache(maxsize=512)
def binomial_threshold(p0: float, p1: float, n: int, arl: float) -> float:
    """The threshold h of the binomial CUSUM (p0 -> p1, n examples a point) for an in-control
    average run length of `arl` points."""
    steps, probs = _llr_steps(p0, p1, n)
    if n > NORMAL_N:
        mean = float(np.dot(steps, probs))
        steps, probs = _normal_steps(mean, math.sqrt(float(np.dot((steps - mean) ** 2, probs))))
    # ARL grows with h (in steps: the grid rounds the llr), so bisect h to a relative 0.5%,
    # starting from the bracket around log(arl) (the llr CUSUM's ARL is of the order of e^h).
    guess = max(math.log(arl), 0.1)
    low, high = guess / 4, guess
    while _markov_arl(high, steps, probs) < arl:
        low, high = high, high * 2
        if high > 1e4:
            return high
    while _markov_arl(low, steps, probs) >= arl and low > 1e-3:
        high, low = low, low / 2
    while high - low > 0.005 * high:
        mid = (low + high) / 2
        if _markov_arl(mid, steps, probs) < arl:
            low = mid
        else:
            high = mid
    return high


@dataclass
class BinomialCusum:
    """Two binomial CUSUMs (a fall and a rise of the proportion by `drop`), self-starting.

    `arl` is the budget per direction in points, `warmup_examples` the examples p0 is learnt from
    before detection starts.
    """

    drop: float = 0.05
    arl: float = 10_000_000.0
    warmup_examples: float = 1000.0
    successes: float = 0.0
    examples: float = 0.0
    weight_sum: float = 0.0
    points_in_reference: int = 0
    s_down: float = 0.0
    s_up: float = 0.0
    down_start: int | None = None
    up_start: int | None = None
    down_points: int = 0
    down_successes: float = 0.0
    down_examples: float = 0.0
    up_points: int = 0
    up_successes: float = 0.0
    up_examples: float = 0.0
    points: int = 0
    scored: int = 0
    """Points scored against a learnt p0 (the denominator of a false-alarm rate)."""
    _cache: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ready(self) -> bool:
        return self.examples >= self.warmup_examples and self.points_in_reference >= 2

    def level(self) -> float:
        return (self.successes + 0.5) / (self.examples + 1.0)

    def typical_n(self) -> int:
        """Examples per point of the reference, as the threshold is calibrated for (2 digits)."""
        if self.weight_sum <= 0:
            return 1
        n = self.examples / self.weight_sum
        if n <= NORMAL_N:
            return max(1, round(n))
        digits = 10 ** max(0, int(math.log10(n)) - 1)
        return int(round(n / digits) * digits)

    def threshold(self, direction: str) -> float:
        p0 = min(max(round(self.level() / P_STEP) * P_STEP, P_STEP), 1 - P_STEP)
        p1 = p0 - self.drop if direction == "down" else p0 + self.drop
        p1 = min(max(p1, P_STEP / 2), 1 - P_STEP / 2)
        return binomial_threshold(p0, p1, self.typical_n(), self.arl)

    def run(self, values: Sequence[float], ns: Sequence[float], stamps: Sequence[int]) -> list[Change]:
        changes: list[Change] = []
        for x, n, ts in zip(values, ns, stamps, strict=True):
            self.points += 1
            hits = x * n
            if not self.ready:
                self._learn(hits, n)
                continue
            self.scored += 1
            p0 = self.level()
            p_down = max(p0 - self.drop, 1e-6)
            p_up = min(p0 + self.drop, 1 - 1e-6)
            misses = n - hits
            q0 = 1.0 - p0
            llr_down = hits * math.log(p_down / p0) + misses * math.log((1 - p_down) / q0)
            llr_up = hits * math.log(p_up / p0) + misses * math.log((1 - p_up) / q0)
            self.s_down = max(0.0, self.s_down + llr_down)
            self.s_up = max(0.0, self.s_up + llr_up)
            self._track(hits, n, ts)
            fired = None
            if self.s_down > self.threshold("down"):
                fired = Change(
                    "down", self.down_start or ts, ts, p0, math.sqrt(p0 * q0),
                    self.down_successes / self.down_examples if self.down_examples else x, self.down_points,
                )  # fmt: skip
            elif self.s_up > self.threshold("up"):
                fired = Change(
                    "up", self.up_start or ts, ts, p0, math.sqrt(p0 * q0),
                    self.up_successes / self.up_examples if self.up_examples else x, self.up_points,
                )  # fmt: skip
            if fired is not None:
                changes.append(fired)
                self._restart()
                continue
            self._learn(hits, n)
        return changes

    def _learn(self, hits: float, n: float) -> None:
        self.successes += hits
        self.examples += n
        self.weight_sum += 1.0
        self.points_in_reference += 1

    def _track(self, hits: float, n: float, ts: int) -> None:
        if self.s_down > 0:
            if self.down_points == 0:
                self.down_start = ts
            self.down_points += 1
            self.down_successes += hits
            self.down_examples += n
        else:
            self.down_points, self.down_successes, self.down_examples, self.down_start = 0, 0.0, 0.0, None
        if self.s_up > 0:
            if self.up_points == 0:
                self.up_start = ts
            self.up_points += 1
            self.up_successes += hits
            self.up_examples += n
        else:
            self.up_points, self.up_successes, self.up_examples, self.up_start = 0, 0.0, 0.0, None

    def _restart(self) -> None:
        # A fresh p0 on the new regime; the excursion's points are not reused (selected for being
        # extreme, they would overstate the change).
        self.successes = self.examples = self.weight_sum = 0.0
        self.points_in_reference = 0
        self.s_down = self.s_up = 0.0
        self.down_points = self.up_points = 0
        self.down_successes = self.down_examples = self.up_successes = self.up_examples = 0.0
        self.down_start = self.up_start = None

    def describe(self) -> str:
        return (
            f"binomial CUSUM: p0 {self.level():.4f} learnt from {self.examples:.0f} examples, "
            f"tuned to a change of {self.drop:g}, n {self.typical_n()} a point"
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("_cache", None)
        out["model"] = "binomial"
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BinomialCusum:
        names = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        return cls(**{k: v for k, v in data.items() if k in names})

    def same_settings(self, drop: float, arl: float, warmup_examples: float) -> bool:
        return (self.drop, self.arl, self.warmup_examples) == (drop, arl, warmup_examples)
