"""The report's raw-value decoder: each distinct value decoded once, shared values read-only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.store.raw_values import Decoder


def test_documents_are_decoded_once_and_read_only() -> None:
    decoder = Decoder()
    text = '{"severity": ["medium", "critical"], "advisory_revision": 3}'
    first, again = decoder.document(text), decoder.document(text)
    assert first is again
    assert dict(first) == {"severity": ["medium", "critical"], "advisory_revision": 3}
    with pytest.raises(TypeError):
        first["severity"] = ["low", "low"]  # type: ignore[index]
    assert dict(decoder.document(None)) == {}
    assert dict(decoder.document("[1, 2]")) == {}  # not an object: nothing to replay
    assert dict(decoder.document({"reason": "x"})) == {"reason": "x"}  # PostgreSQL's driver decodes JSONB


def test_moments_come_back_aware_utc_from_text_or_driver_datetimes() -> None:
    decoder = Decoder()
    naive_text = "2026-11-25 08:00:00.000000"
    assert decoder.required(naive_text) == datetime(2026, 11, 25, 8, tzinfo=UTC)
    shifted = datetime(2026, 11, 25, 9, tzinfo=timezone(timedelta(hours=1)))
    assert decoder.moment(shifted) == datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert decoder.moment(shifted).tzinfo is UTC  # type: ignore[union-attr]
    assert decoder.moment(None) is None
    with pytest.raises(ValueError, match="NOT NULL"):
        decoder.required(None)
