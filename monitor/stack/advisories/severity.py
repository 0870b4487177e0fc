"""Severity from CVSS v3 / v4 vectors (the `cvss` library) and the advisory's own label.

Every source's score is kept. A vulnerability's severity is the highest base score among the
vectors of all its records (merged aliases included); the CVSS rating scale turns it into a word.
Only when no record has a vector does the database's label (GHSA `LOW`/`MODERATE`/`HIGH`/
`CRITICAL`) decide. Without either the severity is `unknown`, which is its own level.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from cvss import CVSS3, CVSS4  # type: ignore[import-untyped]
from cvss.exceptions import CVSSError  # type: ignore[import-untyped]

from monitor.stack.advisories.model import Advisory, SeverityScore

Rating = Literal["unknown", "none", "low", "medium", "high", "critical"]
RATINGS: tuple[Rating, ...] = ("unknown", "none", "low", "medium", "high", "critical")
RANK: dict[str, int] = {r: i for i, r in enumerate(RATINGS)}
_LABELS: dict[str, Rating] = {
    "low": "low",
    "moderate": "medium",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
    "none": "none",
}


def rating_of(score: float) -> Rating:
    """The CVSS (v3 and v4 share it) qualitative rating of a base score."""
    if score == 0:
        return "none"
    if score < 4.0:
        return "low"
    if score < 7.0:
        return "medium"
    if score < 9.0:
        return "high"
    return "critical"


def label_rating(label: str | None) -> Rating | None:
    return _LABELS.get(label.strip().lower()) if label else None


@dataclass(frozen=True, slots=True)
class Score:
    """One source's opinion of a vulnerability's severity."""

    advisory: str
    kind: str
    """CVSS_V3, CVSS_V4 or LABEL."""
    vector: str | None
    score: float | None
    rating: Rating
    error: str | None = None

    def to_doc(self) -> dict[str, object]:
        doc: dict[str, object] = {"advisory": self.advisory, "type": self.kind, "rating": self.rating}
        if self.vector:
            doc["vector"] = self.vector
        if self.score is not None:
            doc["score"] = self.score
        if self.error:
            doc["error"] = self.error
        return doc


def score_vector(advisory: str, item: SeverityScore) -> Score | None:
    """A base score from one OSV severity entry; None for types other than CVSS v3/v4."""
    try:
        if item.type == "CVSS_V3":
            v3 = CVSS3(item.score)
            base = float(v3.base_score)
            return Score(advisory, item.type, item.score, base, rating_of(base))
        if item.type == "CVSS_V4":
            v4 = CVSS4(item.score)
            base = float(v4.base_score)
            return Score(advisory, item.type, item.score, base, rating_of(base))
    except (CVSSError, ValueError, KeyError) as exc:
        return Score(advisory, item.type, item.score, None, "unknown", f"invalid vector: {exc}")
    return None


def advisory_scores(advisory: Advisory, package: str | None = None) -> list[Score]:
    """Every score an advisory gives (top level, or the affected entry of `package`), and its label."""
    entries = list(advisory.severity)
    for affected in advisory.affected:
        if package is None or affected.name == package:
            entries.extend(affected.severity)
    scores = [s for s in (score_vector(advisory.id, e) for e in entries) if s is not None]
    label = label_rating(advisory.label)
    if label is not None:
        scores.append(Score(advisory.id, "LABEL", None, None, label))
    return scores


@dataclass(frozen=True, slots=True)
class Severity:
    rating: Rating
    score: float | None
    scores: tuple[Score, ...]

    @property
    def disagreement(self) -> bool:
        """Sources rate the vulnerability differently (shown, not resolved)."""
        return len({s.rating for s in self.scores if s.rating != "unknown"}) > 1


def combine(scores: Iterable[Score]) -> Severity:
    """The severity of a vulnerability from all its sources' scores (highest vector score wins)."""
    items = tuple(scores)
    numeric = [s.score for s in items if s.score is not None]
    if numeric:
        best = max(numeric)
        return Severity(rating_of(best), best, items)
    labels = [s.rating for s in items if s.kind == "LABEL"]
    if labels:
        return Severity(max(labels, key=RANK.__getitem__), None, items)
    return Severity("unknown", None, items)
