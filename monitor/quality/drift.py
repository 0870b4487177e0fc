"""Distribution drift of one column: profiles (the reference binned once) and effect sizes.

A numeric column raw-pushed is profiled as its sorted values (kept for the exact statistics), its
quantile function at `QUANTILES` levels (for summaries and histogram comparisons) and, for a
reference, its bins. A pushed histogram is read as uniform within each bin: every statistic that
involves one is approximate and says so (`approximate`, with an error bound for Wasserstein).
A categorical column is profiled as counts per category.

Bins (PSI and Jensen-Shannon): a column with at most `DISCRETE_VALUES` distinct values is binned
by value (one bin per value, edges half way between neighbours); otherwise near the reference's
deciles, with each edge half way between a reference value and the next distinct one, so no
reference bin is ever empty and repeated values sit inside a bin, not on its edge. Shares are
smoothed by half an observation per bin on both sides (Jeffreys), so an empty current bin weighs
what its sampling noise weighs instead of a floor of 1e-4 that turns one empty bin into PSI 0.7.

Statistics, all effect sizes unless named a p-value (see docs/quality.md for what shift each
threshold corresponds to):

- PSI on the bins;
- Jensen-Shannon distance (natural log, SciPy) on the same bins or on the categories;
- Wasserstein-1 distance divided by the reference standard deviation (floored at 0.001, as
  Evidently's "normalised Wasserstein"): exact between raw samples (the same merge of the two
  sorted samples as SciPy's `wasserstein_distance`), from the quantile functions when a side is
  a histogram;
- p-values: two-sample Kolmogorov-Smirnov for numeric columns (the exact statistic; SciPy's exact
  distribution up to 10,000 values a side as `ks_2samp` picks it, the asymptotic one above),
  chi-square on the category counts for categorical ones (SciPy's `chi2_contingency`). At large n
  they flag trivial shifts, so they only ever gate an effect size; at small n effect sizes are
  noise, so the default verdict needs both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, kstwobign

QUANTILES = 1000
LEVELS: NDArray[np.float64] = (np.arange(QUANTILES, dtype=np.float64) + 0.5) / QUANTILES
FINE_LEVELS: NDArray[np.float64] = (np.arange(20_000, dtype=np.float64) + 0.5) / 20_000
"""Levels of the quantile functions compared when a side is a histogram."""
SMOOTHING = 0.5
"""Observations added to each bin before shares are taken (Jeffreys' prior)."""
STD_FLOOR = 0.001
DEFAULT_BINS = 10
DEFAULT_P_VALUE = 0.05
"""The default gate: an effect size counts only when its column's Holm-corrected p-value is below this."""
DISCRETE_VALUES = 20
"""At most this many distinct values: the column is binned by value."""
EXACT_KS_MAX = 10_000
"""Up to this many values a side, the KS p-value is SciPy's exact one (as `ks_2samp` chooses)."""

Kind = Literal["numeric", "categorical"]
FloatArray = NDArray[np.float64]


class ProfileError(ValueError):
    """A column's data cannot be profiled; the message names what was wrong."""


@dataclass(frozen=True)
class NumericProfile:
    """A numeric column: size, moments, quantile function; for a reference also its bins.

    `values` holds the sorted raw values when the column was pushed raw (the exact statistics need
    them; a reference's are stored beside its profile, not in it). `histogram` holds the edges and
    counts of a pushed histogram.
    """

    n: int
    missing: int
    mean: float
    std: float
    minimum: float
    maximum: float
    quantiles: FloatArray
    edges: FloatArray = field(default_factory=lambda: np.empty(0))
    """Interior bin edges (reference only); bin i holds edges[i-1] < x <= edges[i]."""
    shares: FloatArray = field(default_factory=lambda: np.empty(0))
    """Share of the reference in each bin (reference only)."""
    values: FloatArray | None = None
    histogram: tuple[FloatArray, FloatArray] | None = None
    distinct: int | None = None
    """Distinct values of a raw sample (None for a histogram)."""

    kind: Kind = "numeric"

    @property
    def discrete(self) -> bool:
        return self.distinct is not None and self.distinct <= DISCRETE_VALUES

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "numeric",
            "n": self.n,
            "missing": self.missing,
            "mean": self.mean,
            "std": self.std,
            "min": self.minimum,
            "max": self.maximum,
            "quantiles": self.quantiles.tolist(),
            "edges": self.edges.tolist(),
            "shares": self.shares.tolist(),
            "distinct": self.distinct,
        }
        if self.histogram is not None:
            out["histogram"] = {"edges": self.histogram[0].tolist(), "counts": self.histogram[1].tolist()}
        return out

    def summary(self) -> dict[str, Any]:
        """What an API answer shows of the profile (not the 1,000 quantiles)."""
        q = self.quantiles
        return {
            "kind": "numeric",
            "n": self.n,
            "missing": self.missing,
            "mean": self.mean,
            "std": self.std,
            "min": self.minimum,
            "max": self.maximum,
            "p05": _at(q, 0.05),
            "p50": _at(q, 0.5),
            "p95": _at(q, 0.95),
            "form": "histogram" if self.histogram is not None else "values",
        }

    def with_values(self, values: FloatArray | None) -> NumericProfile:
        """This profile with its sorted raw values attached (a stored reference, when decoded)."""
        return NumericProfile(
            self.n, self.missing, self.mean, self.std, self.minimum, self.maximum, self.quantiles,
            self.edges, self.shares, values, self.histogram, self.distinct,
        )  # fmt: skip


@dataclass(frozen=True)
class CategoricalProfile:
    n: int
    missing: int
    counts: Mapping[str, int]
    kind: Kind = "categorical"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "categorical", "n": self.n, "missing": self.missing, "counts": dict(self.counts)}

    def summary(self) -> dict[str, Any]:
        top = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        return {
            "kind": "categorical",
            "n": self.n,
            "missing": self.missing,
            "categories": len(self.counts),
            "top": dict(top),
        }


Profile = NumericProfile | CategoricalProfile


def _at(quantiles: FloatArray, level: float) -> float:
    return float(np.interp(level, LEVELS, quantiles))


def profile_from_json(data: Mapping[str, Any], values: FloatArray | None = None) -> Profile:
    """A stored profile decoded; `values` are the stored sorted raw values of a numeric reference."""
    if data["kind"] == "categorical":
        return CategoricalProfile(
            int(data["n"]), int(data["missing"]), {str(k): int(v) for k, v in data["counts"].items()}
        )
    hist = data.get("histogram")
    distinct = data.get("distinct")
    return NumericProfile(
        n=int(data["n"]),
        missing=int(data["missing"]),
        mean=float(data["mean"]),
        std=float(data["std"]),
        minimum=float(data["min"]),
        maximum=float(data["max"]),
        quantiles=np.asarray(data["quantiles"], dtype=np.float64),
        edges=np.asarray(data["edges"], dtype=np.float64),
        shares=np.asarray(data["shares"], dtype=np.float64),
        values=values,
        histogram=(
            (np.asarray(hist["edges"], dtype=np.float64), np.asarray(hist["counts"], dtype=np.float64))
            if hist is not None
            else None
        ),
        distinct=None if distinct is None else int(distinct),
    )


# --- building profiles ----------------------------------------------------------------------------


def numeric_profile(values: FloatArray, missing: int = 0, bins: int | None = None) -> NumericProfile:
    """Profile a sample of finite numbers; with `bins`, also the bins of a reference."""
    if values.size == 0:
        raise ProfileError("no values (every value is missing)")
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    if not (math.isfinite(ordered[0]) and math.isfinite(ordered[-1])):
        # Sorted, NaN goes last and infinities to the ends: two looks check every value.
        raise ProfileError(
            "values must be finite numbers (NaN and infinity are not allowed; send null for a missing value)"
        )
    m = ordered.size
    quantiles = ordered[np.minimum((LEVELS * m).astype(np.int64), m - 1)]
    mean = float(ordered.mean())
    std = float(np.sqrt(np.mean((ordered - mean) ** 2)))
    changes = np.flatnonzero(ordered[1:] != ordered[:-1])
    distinct = int(changes.size + 1)
    edges = shares = np.empty(0)
    if bins is not None:
        edges = reference_edges(ordered, changes, bins)
        shares = _shares_of_sorted(ordered, edges)
    return NumericProfile(
        m, missing, mean, std, float(ordered[0]), float(ordered[-1]), quantiles, edges, shares, ordered, None, distinct
    )


def reference_edges(ordered: FloatArray, changes: NDArray[np.intp], bins: int) -> FloatArray:
    """Interior bin edges of a sorted reference: by value when it has few distinct values, else
    near its quantiles; each edge half way between a value and the next distinct one, so every
    bin holds at least one reference value and no value lies on an edge."""
    lows = ordered[changes]
    highs = ordered[changes + 1]
    if changes.size + 1 <= DISCRETE_VALUES:
        return np.asarray((lows + highs) / 2, dtype=np.float64)
    m = ordered.size
    # The value at each interior quantile, then the gap just above it (a gap is identified by the
    # index of the last position before it, so repeated quantile values collapse to one edge).
    positions = np.minimum((np.arange(1, bins) * m) // bins, m - 1)
    gap = np.searchsorted(changes, positions, side="left")
    gap = np.unique(gap[gap < changes.size])
    return np.asarray((lows[gap] + highs[gap]) / 2, dtype=np.float64)


def _shares_of_sorted(ordered: FloatArray, edges: FloatArray) -> FloatArray:
    return _counts_of_sorted(ordered, edges) / ordered.size


def _counts_of_sorted(ordered: FloatArray, edges: FloatArray) -> FloatArray:
    # For sorted data the bin counts are differences of positions: no per-value pass needed.
    positions = np.searchsorted(ordered, edges, side="right")
    return np.diff(np.concatenate(([0], positions, [ordered.size]))).astype(np.float64)


def histogram_profile(
    edges: Sequence[float], counts: Sequence[float], missing: int = 0, bins: int | None = None
) -> NumericProfile:
    """Profile a histogram (len(edges) == len(counts) + 1), taking values as uniform within a bin."""
    e = np.asarray(edges, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    if e.ndim != 1 or c.ndim != 1 or e.size != c.size + 1 or c.size == 0:
        raise ProfileError(
            f"a histogram needs len(edges) == len(counts) + 1 >= 2, got {e.size} edges and {c.size} counts"
        )
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(c))):
        raise ProfileError("histogram edges and counts must be finite numbers")
    if np.any(np.diff(e) <= 0):
        raise ProfileError("histogram edges must be strictly increasing")
    if np.any(c < 0):
        raise ProfileError("histogram counts must not be negative")
    total = float(c.sum())
    if total <= 0:
        raise ProfileError("histogram has no counts")
    cdf = np.concatenate(([0.0], np.cumsum(c) / total))
    quantiles = np.interp(LEVELS, cdf, e)
    mids = (e[:-1] + e[1:]) / 2
    widths = np.diff(e)
    mean = float(np.dot(c, mids) / total)
    # Variance of a mixture of uniforms: spread of the midpoints plus width^2 / 12 within each bin.
    var = float(np.dot(c, (mids - mean) ** 2 + widths**2 / 12) / total)
    nonzero = np.nonzero(c)[0]
    low, high = float(e[nonzero[0]]), float(e[nonzero[-1] + 1])
    n = int(round(total))
    edges_q = shares = np.empty(0)
    if bins is not None:
        edges_q = np.unique(np.interp(np.arange(1, bins) / bins, cdf, e))
        shares = np.diff(np.concatenate(([0.0], np.interp(edges_q, e, cdf), [1.0])))
        keep = np.concatenate((shares[:-1] > 0, [True]))  # an edge closing an empty bin goes
        edges_q = edges_q[keep[:-1]] if edges_q.size else edges_q
        shares = np.diff(np.concatenate(([0.0], np.interp(edges_q, e, cdf), [1.0])))
    return NumericProfile(n, missing, mean, math.sqrt(var), low, high, quantiles, edges_q, shares, None, (e, c), None)


def histogram_error(profile: NumericProfile) -> float:
    """Largest Wasserstein-1 distance between the histogram's uniform-within-bin reading and any
    sample with these bin counts: each bin's mass moves at most half its width on average."""
    if profile.histogram is None:
        return 0.0
    e, c = profile.histogram
    return float(np.dot(c / c.sum(), np.diff(e)) / 2)


def categorical_profile(counts: Mapping[str, float], missing: int = 0) -> CategoricalProfile:
    clean: dict[str, int] = {}
    for name, count in counts.items():
        if not isinstance(count, int | float) or isinstance(count, bool) or not math.isfinite(count) or count < 0:
            raise ProfileError(f"category {name!r}: expected a non-negative count, got {count!r}")
        if count:
            clean[str(name)] = int(round(count))
    if not clean:
        raise ProfileError("no counts (every category is empty)")
    return CategoricalProfile(sum(clean.values()), missing, clean)


# --- comparing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDrift:
    """The comparison of one column's current batch with its reference."""

    kind: Kind
    n: int
    reference_n: int
    psi: float
    jensen_shannon: float
    wasserstein: float | None
    p_value: float
    test: Literal["ks", "chi2"]
    missing_share: float
    reference_missing_share: float
    current: Profile
    approximate: bool = False
    """A side was a histogram: the numeric statistics are read from uniform-within-bin values."""
    wasserstein_error: float | None = None
    """Bound on |reported - exact| normalised Wasserstein when approximate."""

    def statistics(self) -> dict[str, float]:
        """The statistics stored as series (`distribution_drift{statistic=...}`)."""
        out = {"psi": self.psi, "jensen_shannon": self.jensen_shannon, "p_value": self.p_value}
        if self.wasserstein is not None:
            out["wasserstein"] = self.wasserstein
            if self.wasserstein_error is not None:
                out["wasserstein_error_bound"] = self.wasserstein_error
        out["missing_share"] = self.missing_share
        return out


def smoothed_shares(counts: FloatArray) -> FloatArray:
    """Shares with half an observation added to each bin: never zero, and an empty bin of a small
    batch weighs what its sampling noise weighs."""
    return (counts + SMOOTHING) / (float(counts.sum()) + SMOOTHING * counts.size)


def psi(reference: FloatArray, current: FloatArray) -> float:
    """Population stability index of two share vectors (both without zeros)."""
    return float(np.sum((current - reference) * np.log(current / reference)))


def _missing_share(profile: Profile) -> float:
    total = profile.n + profile.missing
    return profile.missing / total if total else 0.0


def exact_two_sample(u: FloatArray, v: FloatArray) -> tuple[float, float]:
    """Wasserstein-1 distance and the KS statistic of two sorted samples, exactly.

    One merge of the two sorted samples: a stable argsort of their concatenation is a timsort
    that finds the two runs and merges them in linear time. Within a run of equal values the
    distance gains nothing, and the KS statistic is read only at the last of the run.
    """
    n, m = u.size, v.size
    merged = np.concatenate((u, v))
    order = np.argsort(merged, kind="stable")
    values = np.take(merged, order, out=merged)  # merged is not needed any more: reuse it
    # In integers until the end: |F_u - F_v| * n * m = |m * k - n * (i - k)| = |(n + m) k - n i|
    # with k the u's among the first i values. In place: these arrays are n + m long.
    gaps = np.cumsum(order < n, dtype=np.int64)
    gaps *= n + m
    ranks = np.arange(1, n + m + 1, dtype=np.int64)
    ranks *= n
    gaps -= ranks
    np.abs(gaps, out=gaps)
    step = np.diff(values)
    ends = step != 0
    ks = float(max(int(gaps[:-1][ends].max(initial=0)), int(gaps[-1]))) / (n * m)
    # (a * b).sum(), not np.dot: a BLAS call's threads cost more than they save on a busy machine.
    np.multiply(gaps[:-1], step, out=step)
    distance = float(step.sum()) / (n * m)
    return distance, ks


def ks_p_value(statistic: float, u: FloatArray | None, v: FloatArray | None, n: int, m: int) -> float:
    """Two-sided KS p-value: SciPy's exact distribution for small samples (as `ks_2samp` picks),
    the asymptotic Kolmogorov distribution otherwise."""
    if u is not None and v is not None and max(n, m) <= EXACT_KS_MAX:
        return float(ks_2samp(u, v, method="auto").pvalue)
    return float(kstwobign.sf(statistic * math.sqrt(n * m / (n + m))))


def _quantile_function(profile: NumericProfile, levels: FloatArray) -> FloatArray:
    if profile.histogram is not None:
        e, c = profile.histogram
        cdf = np.concatenate(([0.0], np.cumsum(c) / c.sum()))
        return np.interp(levels, cdf, e)
    if profile.values is not None:
        m = profile.values.size
        return profile.values[np.minimum((levels * m).astype(np.int64), m - 1)]
    return np.interp(levels, LEVELS, profile.quantiles)


def _cdf_at(profile: NumericProfile, points: FloatArray) -> FloatArray:
    if profile.histogram is not None:
        e, c = profile.histogram
        return np.interp(points, e, np.concatenate(([0.0], np.cumsum(c) / c.sum())))
    if profile.values is not None:
        return np.searchsorted(profile.values, points, side="right") / profile.values.size
    return np.interp(points, profile.quantiles, LEVELS, left=0.0, right=1.0)


def _bin_counts(reference: NumericProfile, current: NumericProfile) -> FloatArray:
    if current.values is not None:
        return _counts_of_sorted(current.values, reference.edges)
    cdf = _cdf_at(current, reference.edges)
    return np.diff(np.concatenate(([0.0], cdf, [1.0]))) * current.n


def compare_numeric(
    reference: NumericProfile, current: NumericProfile, current_values: FloatArray | None = None
) -> ColumnDrift:
    """Compare a current numeric profile with a reference profile (which has bins).

    Exact when both sides have their raw values; from the quantile functions (approximate, with
    the bound of `histogram_error`) when a side is a histogram.
    """
    if reference.edges.size == 0 and reference.shares.size == 0:
        raise ProfileError("the reference profile has no bins")
    if current.values is None and current_values is not None:
        current = current.with_values(np.sort(current_values))
    if reference.histogram is not None and current.histogram is not None:
        ref_e, cur_e = reference.histogram[0], current.histogram[0]
        if ref_e.shape != cur_e.shape or not np.allclose(ref_e, cur_e, rtol=1e-9, atol=0.0):
            raise ProfileError(
                f"histogram edges {_short(cur_e)} do not match the reference's {_short(ref_e)}; "
                "push the current batch with the reference's edges"
            )
    ref_counts = reference.shares * reference.n
    cur_counts = _bin_counts(reference, current)
    ref_shares, cur_shares = smoothed_shares(ref_counts), smoothed_shares(cur_counts)
    scale = max(reference.std, STD_FLOOR)
    n, m = reference.n, current.n
    exact = reference.values is not None and current.values is not None
    error: float | None = None
    if exact:
        assert reference.values is not None and current.values is not None
        distance, ks = exact_two_sample(reference.values, current.values)
    else:
        q_ref = _quantile_function(reference, FINE_LEVELS)
        q_cur = _quantile_function(current, FINE_LEVELS)
        distance = float(np.mean(np.abs(q_ref - q_cur)))
        grid = np.concatenate((q_ref, q_cur))
        ks = float(np.max(np.abs(_cdf_at(reference, grid) - _cdf_at(current, grid))))
        # The midpoint rule on FINE_LEVELS misses at most one level step of the spread per side.
        span = max(reference.maximum, current.maximum) - min(reference.minimum, current.minimum)
        error = (histogram_error(reference) + histogram_error(current) + span / FINE_LEVELS.size) / scale
    # KS for every numeric column: on a discrete one it is conservative (ties), and unlike a
    # chi-square on the value bins it also sees values moved off the reference's support.
    test: Literal["ks", "chi2"] = "ks"
    p_value = ks_p_value(ks, reference.values, current.values, n, m)
    return ColumnDrift(
        kind="numeric",
        n=m,
        reference_n=n,
        psi=psi(ref_shares, cur_shares),
        jensen_shannon=float(jensenshannon(ref_shares, cur_shares)),
        wasserstein=distance / scale,
        p_value=p_value,
        test=test,
        missing_share=_missing_share(current),
        reference_missing_share=_missing_share(reference),
        current=current,
        approximate=not exact,
        wasserstein_error=error,
    )


def _short(edges: FloatArray) -> str:
    shown = ", ".join(f"{x:g}" for x in edges[:6])
    return f"[{shown}{', ...' if edges.size > 6 else ''}] ({edges.size} edges)"


def _chi2(ref_counts: FloatArray, cur_counts: FloatArray) -> float:
    keep = (ref_counts + cur_counts) > 0
    if int(keep.sum()) < 2:
        return 1.0  # one value on both sides: nothing to test
    return float(chi2_contingency(np.vstack((ref_counts[keep], cur_counts[keep]))).pvalue)


def compare_categorical(reference: CategoricalProfile, current: CategoricalProfile) -> ColumnDrift:
    names = sorted(set(reference.counts) | set(current.counts))
    ref_counts = np.array([reference.counts.get(k, 0) for k in names], dtype=np.float64)
    cur_counts = np.array([current.counts.get(k, 0) for k in names], dtype=np.float64)
    ref_shares, cur_shares = smoothed_shares(ref_counts), smoothed_shares(cur_counts)
    return ColumnDrift(
        kind="categorical",
        n=current.n,
        reference_n=reference.n,
        psi=psi(ref_shares, cur_shares),
        jensen_shannon=float(jensenshannon(ref_shares, cur_shares)),
        wasserstein=None,
        p_value=_chi2(ref_counts, cur_counts),
        test="chi2",
        missing_share=_missing_share(current),
        reference_missing_share=_missing_share(reference),
        current=current,
    )


def compare(reference: Profile, current: Profile, current_values: FloatArray | None = None) -> ColumnDrift:
    if isinstance(reference, NumericProfile) and isinstance(current, NumericProfile):
        return compare_numeric(reference, current, current_values)
    if isinstance(reference, CategoricalProfile) and isinstance(current, CategoricalProfile):
        return compare_categorical(reference, current)
    raise ProfileError(f"the reference is {reference.kind} but the current data is {current.kind}")


# --- verdicts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """Effect-size thresholds (None turns a statistic off) and the optional p-value gate."""

    psi: float | None = 0.1
    jensen_shannon: float | None = 0.1
    wasserstein: float | None = 0.1
    p_value: float | None = DEFAULT_P_VALUE

    def exceeded(self, stats: Mapping[str, float]) -> list[str]:
        """Names of the effect sizes over their thresholds."""
        out = []
        for name in ("wasserstein", "psi", "jensen_shannon"):
            limit = getattr(self, name)
            value = stats.get(name)
            if limit is not None and value is not None and value >= limit:
                out.append(name)
        return out


def adjust_p_values(p_values: Sequence[float], method: str) -> list[float]:
    """P-values adjusted for testing several columns at once.

    Holm and Bonferroni control the family-wise error rate; Benjamini-Hochberg (SciPy's
    `false_discovery_control`) the false discovery rate.
    """
    from scipy.stats import false_discovery_control

    m = len(p_values)
    if m == 0:
        return []
    p = np.asarray(p_values, dtype=np.float64)
    if method == "none":
        return [float(x) for x in p]
    if method == "bonferroni":
        return [float(x) for x in np.minimum(p * m, 1.0)]
    if method == "benjamini_hochberg":
        return [float(x) for x in np.asarray(false_discovery_control(p, method="bh"), dtype=np.float64)]
    if method == "holm":
        # Holm's step-down: the i-th smallest p times (m - i), made monotone.
        order = np.argsort(p)
        adjusted = np.minimum(np.maximum.accumulate(p[order] * (m - np.arange(m))), 1.0)
        out = np.empty(m)
        out[order] = adjusted
        return [float(x) for x in out]
    raise ValueError(f"unknown correction {method!r}")
