"""Silences and inhibition, pure.

Silences follow Alertmanager: matchers (=, !=, =~, !~, anchored), a start clamped to now, a
required end, expiry by moving the end (never deletion). Inhibition: a firing `source_down`
alert of a project mutes that project's other alerts that depend on the source; configured
inhibit rules mute targets that share the `equal` labels with a firing source alert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from monitor.config.alerting import InhibitConfig, parse_matcher_list
from monitor.core.matchers import Matcher, matches_all


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


def silenced_by(labels: Mapping[str, str], silences: Sequence[Silence], now: datetime) -> list[str]:
    return [s.id for s in silences if s.mutes(labels, now)]


@dataclass(frozen=True, slots=True)
class FiringSource:
    """A firing alert that may inhibit others: its labels, and for source_down the source."""

    fingerprint: str
    labels: Mapping[str, str]
    project: str | None
    source_down: str | None = None


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
            if (
                matches_all(parse_matcher_list(rule.source_matchers), source.labels)
                and matches_all(parse_matcher_list(rule.target_matchers), labels)
                and all(labels.get(name, "") == source.labels.get(name, "") for name in rule.equal)
            ):
                out.append(source.fingerprint)
                break
    return out
