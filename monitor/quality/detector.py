"""Sequential change detection on a metric stream: a self-starting two-sided CUSUM whose threshold
is set from a stated false-alarm budget.

Why CUSUM and not ADWIN: CUSUM is the optimal detector of a mean shift of a chosen size (Lorden
1971), and its in-control average run length (ARL0, the expected number of points between two
false alarms) has a good closed-form approximation (Siegmund 1985), so the false-alarm budget can
be *stated* (`arl`) instead of being a per-check confidence as ADWIN's `delta` is. It needs the
in-control mean and spread, which it learns as it goes:

- the first `warmup` points only build the reference (mean and variance, Welford);
- each later point is standardised against all the points before it and passed through the
  Student t -> normal transform of Hawkins's self-starting CUSUM (1987): the standardised values
  are then exactly independent N(0, 1) on in-control normal data, however few points the
  reference has, so an estimated reference does not inflate the false alarms (a frozen reference
  would: CUSUM's ARL0 is exponential in the reference value k, so a reference mean off by 0.07 sd
  cuts ARL0 about 25-fold);
- on an alarm the detector restarts on the new regime with a fresh reference.

State is a handful of numbers (`to_dict` / `from_dict`), so it survives restarts in rule memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Literal

from scipy.optimize import brentq
from scipy.special import ndtri, stdtr

Direction = Literal["down", "up", "both"]

SIEGMUND_CORRECTION = 1.166
"""Siegmund's boundary correction for a CUSUM of standard normal increments: b = h + 1.166."""

SMALL_REFERENCE = 200
"""Below this many reference points, standardise through the t distribution (self-starting CUSUM)."""


@lru_cache(maxsize=256)
def threshold_for(arl: float, k: float) -> float:
    """The CUSUM decision interval h giving an in-control average run length of `arl` points.

    Siegmund's approximation for N(0, 1) increments with reference value k:
    ARL0 = (exp(2 k b) - 2 k b - 1) / (2 k^2), with b = h + 1.166.
    """
    if arl <= 1 or k <= 0:
        raise ValueError("arl must be > 1 and k > 0")

    def excess(b: float) -> float:
        return (math.expm1(2 * k * b) - 2 * k * b) / (2 * k * k) - arl

    upper = 1.0
    while excess(upper) < 0:
        upper *= 2
    b = float(brentq(excess, 1e-9, upper, xtol=1e-9))
    return max(b - SIEGMUND_CORRECTION, 0.0)


def expected_delay(shift: float, arl: float, k: float) -> float:
    """Siegmund's approximation of the mean detection delay (points) of a `shift`-sd change."""
    b = threshold_for(arl, k) + SIEGMUND_CORRECTION
    delta = shift - k
    if abs(delta) < 1e-9:
        return b * b
    return (math.exp(-2 * delta * b) + 2 * delta * b - 1) / (2 * delta * delta)


@dataclass(frozen=True, slots=True)
class Change:
    """A detected change: which way, where it began, when it was detected, the levels either side."""

    direction: Literal["down", "up"]
    started_ts: int
    detected_ts: int
    before_mean: float
    before_sd: float
    after_mean: float
    after_points: int

    @property
    def shift_sd(self) -> float:
        return (self.after_mean - self.before_mean) / self.before_sd if self.before_sd > 0 else 0.0


@dataclass
class _Moments:
    """Count, mean and sum of squared deviations of a group of points (Welford / Chan)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def merge(self, other: _Moments) -> None:
        if other.n == 0:
            return
        total = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / total
        self.m2 += other.m2 + delta * delta * self.n * other.n / total
        self.n = total

    def sd(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


@dataclass
class CusumDetector:
    """Two CUSUM statistics (one per direction) over standardised points.

    `shift` is the change (in reference standard deviations) the detector is tuned to catch
    fastest (k = shift / 2); `arl` is the false-alarm budget per direction: on in-control, normally
    distributed data, one false alarm every `arl` points on average. `min_sd` floors the reference
    spread (a constant series would otherwise make every wobble infinite); `rel_sd` floors it
    relative to the reference mean.
    """

    shift: float = 0.5
    arl: float = 10_000_000.0
    warmup: int = 30
    min_sd: float = 1e-12
    rel_sd: float = 1e-4
    reference: _Moments = field(default_factory=_Moments)
    down_run: _Moments = field(default_factory=_Moments)
    """The points since the falling statistic was last at zero: the candidate new regime."""
    down_start: int | None = None
    up_run: _Moments = field(default_factory=_Moments)
    up_start: int | None = None
    s_down: float = 0.0
    s_up: float = 0.0
    points: int = 0
    _k: float = field(init=False, repr=False, compare=False)
    _h: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.shift <= 0:
            raise ValueError("shift must be positive")
        if self.warmup < 2:
            raise ValueError("warmup must be at least 2")
        self._k = self.shift / 2
        self._h = threshold_for(self.arl, self._k)

    @property
    def threshold(self) -> float:
        return self._h

    @property
    def ready(self) -> bool:
        return self.reference.n >= self.warmup

    def level(self) -> float:
        """The current reference mean (the level the detector takes as normal)."""
        return self.reference.mean

    def spread(self) -> float:
        return max(self.reference.sd(), self.min_sd, self.rel_sd * abs(self.reference.mean))

    def update(self, x: float, ts: int) -> Change | None:
        """Feed one point; return the change it completes, if any."""
        changes = self.run((x,), (ts,))
        return changes[0] if changes else None

    def run(self, values: Sequence[float], stamps: Sequence[int]) -> list[Change]:
        """Feed points in time order; return the changes detected among them.

        The hot loop keeps everything in locals: it runs once per point of a stream.
        """
        k, h, warmup = self._k, self._h, self.warmup
        ref, down, up = self.reference, self.down_run, self.up_run
        s_down, s_up = self.s_down, self.s_up
        changes: list[Change] = []
        for x, ts in zip(values, stamps, strict=True):
            self.points += 1
            n = ref.n
            if n < warmup:
                ref.add(x)
                continue
            sd = ref.sd()
            floor = self.min_sd if self.min_sd > self.rel_sd * abs(ref.mean) else self.rel_sd * abs(ref.mean)
            if sd < floor:
                sd = floor
            # Hawkins: (x - mean) / (s * sqrt(1 + 1/n)) is Student t with n - 1 degrees of freedom
            # when x comes from the reference's normal distribution; mapping it through the t CDF
            # and the normal quantile gives an exact N(0, 1) value however small n is.
            u = (x - ref.mean) / (sd * math.sqrt(1.0 + 1.0 / n))
            if n < SMALL_REFERENCE:
                z = float(ndtri(stdtr(n - 1, u)))
                if not math.isfinite(z):
                    z = math.copysign(40.0, u)
            else:
                z = u
            s_down = s_down - z - k
            if s_down <= 0.0:
                s_down = 0.0
                down.n, down.mean, down.m2 = 0, 0.0, 0.0
            else:
                if down.n == 0:
                    self.down_start = ts
                down.add(x)
            s_up = s_up + z - k
            if s_up <= 0.0:
                s_up = 0.0
                up.n, up.mean, up.m2 = 0, 0.0, 0.0
            else:
                if up.n == 0:
                    self.up_start = ts
                up.add(x)
            if s_down > h or s_up > h:
                if s_down > h:
                    change = Change(
                        "down", ts if self.down_start is None else self.down_start, ts, ref.mean, sd, down.mean, down.n
                    )
                else:
                    change = Change(
                        "up", ts if self.up_start is None else self.up_start, ts, ref.mean, sd, up.mean, up.n
                    )
                changes.append(change)
                # Restart on the new regime with a fresh reference. The excursion's points are
                # not reused: they were selected for being extreme (they crossed the threshold),
                # so their mean overstates the change and would trigger an alarm back.
                ref.n, ref.mean, ref.m2 = 0, 0.0, 0.0
                for group in (down, up):
                    group.n, group.mean, group.m2 = 0, 0.0, 0.0
                self.down_start = self.up_start = None
                s_down = s_up = 0.0
                continue
            # Every point joins the reference at once (self-starting CUSUM). Once the reference is
            # large, the points of a change being detected move its mean by a negligible amount.
            ref.add(x)
        self.s_down, self.s_up = s_down, s_up
        return changes

    # --- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "shift": self.shift,
            "arl": self.arl,
            "warmup": self.warmup,
            "min_sd": self.min_sd,
            "rel_sd": self.rel_sd,
            "reference": asdict(self.reference),
            "down_run": asdict(self.down_run),
            "down_start": self.down_start,
            "up_run": asdict(self.up_run),
            "up_start": self.up_start,
            "s_down": self.s_down,
            "s_up": self.s_up,
            "points": self.points,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CusumDetector:
        return cls(
            shift=float(data["shift"]),
            arl=float(data["arl"]),
            warmup=int(data["warmup"]),
            min_sd=float(data["min_sd"]),
            rel_sd=float(data["rel_sd"]),
            reference=_Moments(**data["reference"]),
            down_run=_Moments(**data["down_run"]),
            down_start=data.get("down_start"),
            up_run=_Moments(**data["up_run"]),
            up_start=data.get("up_start"),
            s_down=float(data["s_down"]),
            s_up=float(data["s_up"]),
            points=int(data.get("points", 0)),
        )

    def same_settings(self, shift: float, arl: float, warmup: int, min_sd: float, rel_sd: float) -> bool:
        return (self.shift, self.arl, self.warmup, self.min_sd, self.rel_sd) == (shift, arl, warmup, min_sd, rel_sd)
