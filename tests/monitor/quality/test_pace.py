"""Delivery pace bookkeeping: how a move of an alias or stage is timed, and the promotion window."""

from __future__ import annotations

from collectors.quality.pace import AliasHistory, observe, parse_moment

DAY = 86_400_000
WINDOW = 30 * DAY


def test_first_sight_uses_the_version_update_as_an_estimate() -> None:
    history, moved = observe(
        None, "7", None, updated_ms=10 * DAY, run_start_ms=9 * DAY, now_ms=100 * DAY, window_ms=WINDOW
    )
    assert moved is None, "first sight is not a move"
    assert history.current.at_ms == 10 * DAY and history.current.how == "version_updated" and history.first_sight
    assert history.age_seconds(100 * DAY) == 90 * 86_400
    assert history.current.lead_ms == DAY
    assert history.promotions_in(WINDOW, 100 * DAY) == 0, "promoted 90 days ago: outside the 30-day window"


def test_alias_move_is_timed_by_the_poll_stage_move_by_the_version_update() -> None:
    first, _ = observe(None, "7", None, 10 * DAY, None, 100 * DAY, WINDOW)
    alias, moved = observe(
        first, "8", None, updated_ms=100 * DAY + 5, run_start_ms=95 * DAY, now_ms=101 * DAY, window_ms=WINDOW
    )
    assert moved is not None and moved.how == "observed" and moved.at_ms == 101 * DAY
    assert moved.lead_ms == 6 * DAY
    stage, moved = observe(first, "8", None, 100 * DAY + 5, None, 101 * DAY, WINDOW, update_is_move=True)
    assert moved is not None and moved.how == "version_updated" and moved.at_ms == 100 * DAY + 5
    tagged, moved = observe(first, "8", "1970-04-11T00:00:00Z", 100 * DAY + 5, None, 101 * DAY, WINDOW)
    assert moved is not None and moved.how == "tag" and moved.at_ms == 100 * DAY
    assert [p.version for p in alias.recent] == ["8"] and not alias.first_sight
    # A rollback keeps the version's old tag: a tag before the previous poll (which still saw the
    # old version) cannot time the move, so the poll does and says why.
    stale, moved = observe(first, "8", "1970-03-22T00:00:00Z", 100 * DAY + 5, None, 101 * DAY, WINDOW)
    assert moved is not None and moved.how == "observed_stale_tag" and moved.at_ms == 101 * DAY
    assert stale.current.at_ms >= first.checked_ms, "times never go backwards past the previous poll"


def test_promotions_in_the_window_and_json_round_trip() -> None:
    history, _ = observe(None, "1", None, 0, None, 0, WINDOW)
    for version, day in (("2", 5), ("3", 20), ("4", 40)):
        history, moved = observe(history, version, None, None, None, day * DAY, WINDOW)
        assert moved is not None
    history, moved = observe(history, "4", None, None, None, 45 * DAY, WINDOW)
    assert moved is None
    assert [p.version for p in history.recent] == ["3", "4"] and history.promotions_in(WINDOW, 45 * DAY) == 2
    assert AliasHistory.from_json(history.to_json()) == history


def test_parse_moment() -> None:
    assert parse_moment("2026-11-20T12:00:00Z") == 1795176000000
    assert parse_moment("1795176000") == 1795176000000
    assert parse_moment("1795176000000") == 1795176000000
    assert parse_moment("yesterday") is None
