"""Distribution drift of one column: profiles (the reference binned once) and effect sizes.

A numeric column is profiled as its quantile function at `QUANTILES` evenly spaced levels plus
the shares of its reference deciles (`bins`); a categorical one as counts per category. A raw
sample and a pushed histogram become the same kind of profile (a histogram is read as uniform
within each bin), so the comparison code has one path. The reference profile is computed once,
when the reference is pushed, and stored; comparing a current batch then costs one sort of the
batch and a few vector operations.

Statistics, all effect sizes unless named a p-value (see docs/quality.md for what shift each
threshold corresponds to):

- PSI on the reference's decile bins, shares floored at 1e-4 (as Evidently does);
- Jensen-Shannon distance (natural log, SciPy) on the same bins or on the categories;
- Wasserstein-1 distance divided by the reference standard deviation (floored at 0.001, as
  Evidently's "normalised Wasserstein"), computed between the two quantile functions, which is
  W1 exactly for samples of equal size and within 1/QUANTILES of it otherwise;
- optional p-values: two-sample Kolmogorov-Smirnov (asymptotic, SciPy's `kstwobign`) for numeric
  columns, chi-square on the category counts (SciPy's `chi2_contingency`) for categorical ones.
  At large n they flag trivial shifts, which is why they only ever gate an effect size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, kstwobign

QUANTILES = 1000
LEVELS: NDArray[np.float64] = (np.arange(QUANTILES, dtype=np.float64) + 0.5) / QUANTILES
SHARE_FLOOR = 1e-4
STD_FLOOR = 0.001
DEFAULT_BINS = 10

Kind = Literal["numeric", "categorical"]
FloatArray = NDArray[np.float64]


class ProfileError(ValueError):
    """A column's data cannot be profiled; the message names what was wrong."""


@dataclass(frozen=True)
class NumericProfile:
    """A numeric column: size, moments, quantile function; for a reference also its decile bins."""

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

    kind: Kind = "numeric"

    def to_json(self) -> dict[str, Any]:
        return {
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
        }

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
        }


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


def profile_from_json(data: Mapping[str, Any]) -> Profile:
    if data["kind"] == "categorical":
        return CategoricalProfile(
            int(data["n"]), int(data["missing"]), {str(k): int(v) for k, v in data["counts"].items()}
        )
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
    )


# --- building profiles ----------------------------------------------------------------------------


def numeric_profile(values: FloatArray, missing: int = 0, bins: int | None = None) -> NumericProfile:
    """Profile a sample of finite numbers; with `bins`, also the decile-style bins of a reference."""
    if values.size == 0:
        raise ProfileError("no values (every value is missing)")
    if not np.all(np.isfinite(values)):
        raise ProfileError(
            "values must be finite numbers (NaN and infinity are not allowed; send null for a missing value)"
        )
    ordered = np.sort(values)
    m = ordered.size
    quantiles = ordered[np.minimum((LEVELS * m).astype(np.int64), m - 1)]
    std = float(ordered.std())
    profile = NumericProfile(m, missing, float(ordered.mean()), std, float(ordered[0]), float(ordered[-1]), quantiles)
    if bins is None:
        return profile
    edges = np.unique(np.quantile(ordered, np.arange(1, bins) / bins))
    shares = _shares_of_sorted(ordered, edges)
    return NumericProfile(
        profile.n, missing, profile.mean, std, profile.minimum, profile.maximum, quantiles, edges, shares
    )


def _shares_of_sorted(ordered: FloatArray, edges: FloatArray) -> FloatArray:
    # For sorted data the bin counts are differences of positions: no per-value pass needed.
    positions = np.searchsorted(ordered, edges, side="right")
    counts = np.diff(np.concatenate(([0], positions, [ordered.size])))
    return counts.astype(np.float64) / ordered.size


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
    profile = NumericProfile(n, missing, mean, math.sqrt(var), low, high, quantiles)
    if bins is None:
        return profile
    edges_q = np.unique(np.interp(np.arange(1, bins) / bins, cdf, e))
    shares = np.diff(np.concatenate(([0.0], np.interp(edges_q, e, cdf), [1.0])))
    return NumericProfile(n, missing, profile.mean, profile.std, low, high, quantiles, edges_q, shares)


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

    def statistics(self) -> dict[str, float]:
        """The statistics stored as series (`distribution_drift{statistic=...}`)."""
        out = {"psi": self.psi, "jensen_shannon": self.jensen_shannon, "p_value": self.p_value}
        if self.wasserstein is not None:
            out["wasserstein"] = self.wasserstein
        out["missing_share"] = self.missing_share
        return out


def psi(reference: FloatArray, current: FloatArray) -> float:
    r = np.maximum(reference, SHARE_FLOOR)
    c = np.maximum(current, SHARE_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def _missing_share(profile: Profile) -> float:
    total = profile.n + profile.missing
    return profile.missing / total if total else 0.0


def compare_numeric(
    reference: NumericProfile, current: NumericProfile, current_values: FloatArray | None = None
) -> ColumnDrift:
    """Compare a current numeric profile with a reference profile (which has bins).

    With the raw current values the bin shares are exact; otherwise they come from the current
    profile's quantile function.
    """
    if reference.edges.size == 0 and reference.shares.size == 0:
        raise ProfileError("the reference profile has no bins")
    if current_values is not None:
        counts = np.bincount(
            np.searchsorted(reference.edges, current_values, side="left"), minlength=reference.shares.size
        )
        shares = counts.astype(np.float64) / current_values.size
    else:
        cdf = np.interp(reference.edges, current.quantiles, LEVELS, left=0.0, right=1.0)
        shares = np.diff(np.concatenate(([0.0], cdf, [1.0])))
    ref_shares = reference.shares
    wasserstein = float(np.mean(np.abs(reference.quantiles - current.quantiles))) / max(reference.std, STD_FLOOR)
    grid = np.concatenate((reference.quantiles, current.quantiles))
    f_ref = np.interp(grid, reference.quantiles, LEVELS, left=0.0, right=1.0)
    f_cur = np.interp(grid, current.quantiles, LEVELS, left=0.0, right=1.0)
    d = float(np.max(np.abs(f_ref - f_cur)))
    n, m = reference.n, current.n
    p_value = float(kstwobign.sf(d * math.sqrt(n * m / (n + m))))
    return ColumnDrift(
        kind="numeric",
        n=current.n,
        reference_n=reference.n,
        psi=psi(ref_shares, shares),
        jensen_shannon=float(jensenshannon(ref_shares, shares)),
        wasserstein=wasserstein,
        p_value=p_value,
        test="ks",
        missing_share=_missing_share(current),
        reference_missing_share=_missing_share(reference),
        current=current,
    )


def compare_categorical(reference: CategoricalProfile, current: CategoricalProfile) -> ColumnDrift:
    names = sorted(set(reference.counts) | set(current.counts))
    ref_counts = np.array([reference.counts.get(k, 0) for k in names], dtype=np.float64)
    cur_counts = np.array([current.counts.get(k, 0) for k in names], dtype=np.float64)
    ref_shares = ref_counts / ref_counts.sum()
    cur_shares = cur_counts / cur_counts.sum()
    # One category on both sides: nothing to test.
    p_value = float(chi2_contingency(np.vstack((ref_counts, cur_counts))).pvalue) if len(names) > 1 else 1.0
    return ColumnDrift(
        kind="categorical",
        n=current.n,
        reference_n=reference.n,
        psi=psi(ref_shares, cur_shares),
        jensen_shannon=float(jensenshannon(ref_shares, cur_shares)),
        wasserstein=None,
        p_value=p_value,
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
    p_value: float | None = None

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
