"""What the advisory records in force at a past moment said of a vulnerability: its names and score.

A finding's row holds the names (ID and aliases) and the CVSS score of now. An audit of a past
date shows those of the records the advisory database held then (it keeps every revision of every
record): a record published later adds no alias to the past, and a re-scored record shows its old
score. The score is worked out as the matcher works it out (`combine` over every live record's
scores for the package), so it agrees with the severity the finding had then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from monitor.stack.advisories.model import Advisory, AdvisoryError, parse_advisory
from monitor.stack.advisories.severity import advisory_scores, combine

GroupKey = tuple[tuple[str, ...], str]
"""(the vulnerability's names now, the package)"""


class AdvisoryThen(NamedTuple):
    names: tuple[str, ...]
    """Every ID and alias the records then gave, sorted."""
    score: float | None
    rating: str


def advisories_then(
    groups: Iterable[GroupKey], documents: Mapping[str, Mapping[str, Any]]
) -> dict[GroupKey, AdvisoryThen]:
    """Per (names, package): the names and score from the records of `documents` (ID -> OSV record
    in force then) among those names. A group none of whose names had a record then is left out."""
    parsed: dict[str, Advisory | None] = {}
    out: dict[GroupKey, AdvisoryThen] = {}
    for ids, package in set(groups):
        members: dict[str, Advisory] = {}
        for ident in ids:
            if ident not in parsed:
                parsed[ident] = _parse(documents.get(ident), ident)
            advisory = parsed[ident]
            if advisory is not None and advisory.withdrawn is None:
                members.setdefault(advisory.id, advisory)
        if not members:
            continue
        names = tuple(sorted({name for advisory in members.values() for name in advisory.ids}))
        severity = combine(score for advisory in members.values() for score in advisory_scores(advisory, package))
        out[(ids, package)] = AdvisoryThen(names, severity.score, severity.rating)
    return out


def _parse(document: Mapping[str, Any] | None, ident: str) -> Advisory | None:
    if document is None:
        return None
    try:
        return parse_advisory(document, f"advisory {ident}")
    except AdvisoryError:
        return None  # the import validated it; a record that no longer parses keeps today's names
