"""Drift cases on data sets bundled with scikit-learn and River (no download), with fixed seeds.

- noise: a data set split into random halves: nothing drifted, every flag is a false alarm;
- shift: the same halves with every other column of the current half moved by 0.5 of the
  column's standard deviation: those columns drifted, the others did not;
- class: a data set split by its label (breast cancer malignant vs benign, wine cultivar 0 vs 1):
  the classes differ in most columns, as a model's inputs do when the population changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
SEEDS = (0, 1, 2)
SHIFT_SD = 0.5


@dataclass(frozen=True)
class Case:
    name: str
    reference: Array
    current: Array
    drifted: frozenset[int]
    """Columns that truly moved (empty for noise; unknown, so every column, for class splits)."""
    kind: str


def _river(name: str) -> tuple[Array, Array]:
    import river.datasets

    rows = list(getattr(river.datasets, name)())
    keys = sorted(rows[0][0])
    x = np.array([[float(r[0][k]) for k in keys] for r in rows], dtype=np.float64)
    y = np.array([float(r[1]) if not isinstance(r[1], str) else hash(r[1]) % 7 for r in rows])
    return x, y


@cache
def datasets() -> dict[str, tuple[Array, Array]]:
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    loaders: dict[str, Callable[[], tuple[Array, Array]]] = {
        "breast_cancer": lambda: (load_breast_cancer().data, load_breast_cancer().target),
        "wine": lambda: (load_wine().data, load_wine().target),
        "diabetes": lambda: (load_diabetes().data, load_diabetes().target),
        "phishing": lambda: _river("Phishing"),
        "image_segments": lambda: _river("ImageSegments"),
    }
    return {name: load() for name, load in loaders.items()}


def cases() -> Iterator[Case]:
    for name, (x, y) in datasets().items():
        for seed in SEEDS:
            order = np.random.default_rng(seed).permutation(len(x))
            half = len(x) // 2
            ref, cur = x[order[:half]], x[order[half:]]
            yield Case(f"{name}-noise-{seed}", ref, cur, frozenset(), "noise")
            moved = cur.copy()
            columns = frozenset(range(seed % 2, x.shape[1], 2))
            for j in columns:
                moved[:, j] += SHIFT_SD * x[:, j].std()
            yield Case(f"{name}-shift-{seed}", ref, moved, columns, "shift")
        if name in ("breast_cancer", "wine"):
            yield Case(f"{name}-class", x[y == 0], x[y == 1], frozenset(range(x.shape[1])), "class")
