"""Silences and inhibition, pure.

Silences follow Alertmanager: matchers (=, !=, =~, !~, anchored), a start clamped to now, a
required end, expiry by moving the end (never deletion). Inhibition: a firing `source_down`
alert of a project mutes that project's other alerts that depend on the source; configured
inhibit rules mute targets that share the `equal` labels with a firing source alert, except that
(as in Alertmanager) an alert matching both the source and the target matchers is not muted by
an alert that also matches both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache

from monitor.config.alerting import InhibitConfig, parse_matcher_list
from monitor.core.matchers import Matcher, MatchOp, matches_all


class SilenceState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str

    def state(self, now: datetime) -> SilenceState:
        if now >= self.ends_at:
            return SilenceState.EXPIRED
        if now < self.starts_at:
            return SilenceState.PENDING
        return SilenceState.ACTIVE

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        return self.state(now) is SilenceState.ACTIVE and matches_all(self.matchers, labels)


def empty_match_problem(matchers: Sequence[Matcher]) -> str | None:
    """Alertmanager refuses a silence whose matchers would all match an alert lacking those labels:
    `model=~".*"` alone would mute everything. Only `=` and `=~` count as matching the empty
    string there; a negative matcher never does (so `foo!="bar"` alone is accepted, as in AM)."""
    if all(m.op in (MatchOp.EQ, MatchOp.RE) and m.matches({}) for m in matchers):
        return "at least one matcher must not match the empty string"
    return None


def updates_in_place(
    prev: Silence, matchers: Sequence[Matcher], starts_at: datetime, ends_at: datetime, now: datetime
) -> bool:
    """Whether a POST naming an existing silence edits it (same id) or replaces it, as Alertmanager
    decides: same matchers, and a time change the silence's state allows (an active silence keeps
    its start, to the second, and may not end in the past; a pending one may not start in the past;
    an expired one is never edited). `starts_at` is the start as given, before clamping to now."""
    if tuple(matchers) != prev.matchers:
        return False
    state = prev.state(now)
    if state is SilenceState.ACTIVE:
        return int(starts_at.timestamp()) == int(prev.starts_at.timestamp()) and ends_at >= now
    if state is SilenceState.PENDING:
        return starts_at >= now
    return False


def silenced_by(labels: Mapping[str, str], silences: Sequence[Silence], now: datetime) -> list[str]:
    return [s.id for s in silences if s.mutes(labels, now)]


@dataclass(frozen=True, slots=True)
class FiringSource:
    """A firing alert that may inhibit others: its labels, and for source_down the source."""

    fingerprint: str
    labels: Mapping[str, str]
    project: str | None
    source_down: str | None = None


@lru_cache(maxsize=1024)
def _parsed(matchers: tuple[str, ...]) -> tuple[Matcher, ...]:
    """An inhibit rule's matchers, parsed once (muting runs per alert and firing source)."""
    return parse_matcher_list(list(matchers))


def inhibited_by(
    labels: Mapping[str, str],
    project: str | None,
    depends_on: Sequence[str] | None,
    firing: Sequence[FiringSource],
    rules: Sequence[InhibitConfig],
    own_fingerprint: str,
) -> list[str]:
    """Fingerprints of the firing alerts that mute this one (an alert never mutes itself)."""
    out: list[str] = []
    for source in firing:
        if source.fingerprint == own_fingerprint:
            continue
        if (
            source.source_down is not None
            and project is not None
            and source.project == project
            and (depends_on is None or source.source_down in depends_on)
            and labels.get("alertname") != source.labels.get("alertname")
        ):
            out.append(source.fingerprint)
            continue
        for rule in rules:
            targets = _parsed(tuple(rule.target_matchers))
            sources = _parsed(tuple(rule.source_matchers))
            if (
                matches_all(sources, source.labels)
                and matches_all(targets, labels)
                and all(labels.get(name, "") == source.labels.get(name, "") for name in rule.equal)
                # Alertmanager's guard against self-inhibition: an alert matching both sides of a
                # rule is never muted by another alert that also matches both sides.
                and not (matches_all(sources, labels) and matches_all(targets, source.labels))
            ):
                out.append(source.fingerprint)
                break
    return out
