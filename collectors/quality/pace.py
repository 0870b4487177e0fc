"""Delivery pace of a registered model: when its production alias (or stage) last moved, how often,
and how long a version took from its training run's start to production.

MLflow keeps no history of aliases (setting one updates no timestamp), so mlmon builds the history
itself from what each poll sees, kept in the source's checkpoint, with every move also recorded
as an event (the audit trail). The time of a move is taken, in order of preference, from a model
version tag the team sets (`promoted_at_tag`) unless it lies at or before the previous poll (which
still saw the old version: a rolled-back version keeps its old tag, so times never go backwards
past the previous recorded move), for a stage from the version's
`last_updated_timestamp` when it falls between the previous poll and this one (a stage transition
updates it), or else from the poll that saw the move (good to one poll interval). On first sight
the version's last update is taken as an estimate (`how: version_updated`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

How = Literal["tag", "version_updated", "observed", "observed_stale_tag"]


@dataclass(frozen=True, slots=True)
class Promotion:
    version: str
    at_ms: int
    how: How
    lead_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "at_ms": self.at_ms, "how": self.how, "lead_ms": self.lead_ms}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Promotion:
        lead = data.get("lead_ms")
        return cls(
            str(data["version"]), int(data["at_ms"]), data.get("how", "observed"), None if lead is None else int(lead)
        )


@dataclass(frozen=True, slots=True)
class AliasHistory:
    """What mlmon knows of one alias (or stage) of one registered model."""

    current: Promotion
    first_sight: bool
    """True while the current version is the one mlmon found when it started watching."""
    checked_ms: int
    recent: tuple[Promotion, ...] = field(default=())
    """Moves within the pace window, oldest first (including the first sight when in the window)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "current": self.current.to_json(),
            "first_sight": self.first_sight,
            "checked_ms": self.checked_ms,
            "recent": [p.to_json() for p in self.recent],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AliasHistory:
        return cls(
            Promotion.from_json(data["current"]),
            bool(data.get("first_sight", False)),
            int(data["checked_ms"]),
            tuple(Promotion.from_json(p) for p in data.get("recent", [])),
        )

    def age_seconds(self, now_ms: int) -> float:
        return max(0, now_ms - self.current.at_ms) / 1000

    def promotions_in(self, window_ms: int, now_ms: int) -> int:
        return sum(1 for p in self.recent if now_ms - p.at_ms <= window_ms)


def promotion_time(
    tag_value: str | None, updated_ms: int | None, after_ms: int | None, now_ms: int, update_is_move: bool
) -> tuple[int, How]:
    """When a version became current.

    A tag the team sets wins. A stage transition updates the version (`update_is_move`), so its
    last update, when it lies in (previous poll, now], is the move. Setting an alias updates
    nothing, so a moved alias is timed by the poll that saw it. On first sight (no previous poll)
    the version's last update is the best estimate there is.
    """
    stale = False
    if tag_value:
        parsed = parse_moment(tag_value)
        # The previous poll still saw the old version, so the move came after it: a tag at or
        # before that poll is stale (a rollback to a version keeps its original promotion tag)
        # and would date the move, and the likely cause, into the past.
        stale = parsed is not None and after_ms is not None and parsed < after_ms
        if parsed is not None and parsed <= now_ms and not stale:
            return parsed, "tag"
    if updated_ms is not None and updated_ms <= now_ms:
        moved_since_last_poll = after_ms is not None and update_is_move and updated_ms > after_ms
        if after_ms is None or moved_since_last_poll:
            return updated_ms, "version_updated"
    return now_ms, "observed_stale_tag" if stale else "observed"


def observe(
    previous: AliasHistory | None,
    version: str,
    tag_value: str | None,
    updated_ms: int | None,
    run_start_ms: int | None,
    now_ms: int,
    window_ms: int,
    update_is_move: bool = False,
) -> tuple[AliasHistory, Promotion | None]:
    """The history after a poll saw `version`, and the move this poll found (None if it did not move)."""
    if previous is not None and previous.current.version == version:
        kept = tuple(p for p in previous.recent if now_ms - p.at_ms <= window_ms)
        return replace(previous, checked_ms=now_ms, recent=kept), None
    after = previous.checked_ms if previous is not None else None
    at_ms, how = promotion_time(tag_value, updated_ms, after, now_ms, update_is_move)
    lead = at_ms - run_start_ms if run_start_ms is not None and at_ms >= run_start_ms else None
    promotion = Promotion(version, at_ms, how, lead)
    recent = tuple(p for p in (*(previous.recent if previous else ()), promotion) if now_ms - p.at_ms <= window_ms)
    history = AliasHistory(promotion, previous is None, now_ms, recent)
    return history, (promotion if previous is not None else None)


def parse_moment(text: str) -> int | None:
    """Epoch milliseconds of an ISO 8601 time or of epoch seconds / milliseconds, or None."""
    try:
        number = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    return int(number if number > 1e11 else number * 1000)
