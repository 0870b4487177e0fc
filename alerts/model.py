"""Value types of the alert engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any


class Condition(StrEnum):
    """What a rule kind says of one series (or source) now.

    HOLD is the hysteresis band: neither the firing nor the clearing condition holds, so the
    alert keeps whatever state it is in.
    """

    FIRE = "fire"
    CLEAR = "clear"
    HOLD = "hold"
    NODATA = "nodata"


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(slots=True)
class Verdict:
    """One alert candidate: its identifying labels (beyond the rule's), the condition, the value.

    Not frozen, though nothing changes one: a cycle makes one per series and rule (50,000 for
    10,000 projects), and a frozen dataclass's __init__ costs five times a plain one's."""

    labels: Mapping[str, str]
    condition: Condition
    value: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = 0xFFFFFFFFFFFFFFFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """Identity of an alert (annotations never count), equal to Alertmanager's for the same labels,
    so a consumer can de-duplicate mlmon's and Alertmanager's notifications: FNV-1a 64 over the
    labels sorted by name, each name and value followed by a 0xff byte, as 16 lowercase hex digits.
    Labels with an empty value are left out, as Alertmanager drops them before hashing."""
    return _fnv(tuple(sorted(labels.items())))


@lru_cache(maxsize=32_768)
def _fnv(pairs: tuple[tuple[str, str], ...]) -> str:
    # Byte by byte in Python costs ~20x a C hash: each cycle meets the same label sets again
    # (every alert's series, every evaluation), so each set is hashed once.
    parts = [part.encode() for name, value in pairs if value != "" for part in (name, value)]
    h = _FNV_OFFSET
    data = b"\xff".join(parts) + b"\xff" if parts else b""
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


@dataclass(frozen=True, slots=True)
class AlertInstance:
    """The persisted state of one alert (rule + labels)."""

    rule: str
    fingerprint: str
    project: str | None
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: AlertState
    value: float | None = None
    nodata: bool = False
    active_at: datetime | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    keep_firing_since: datetime | None = None
    nodata_since: datetime | None = None
    last_eval_at: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    ack_comment: str | None = None
    id: int | None = None

    def evolve(self, **changes: Any) -> AlertInstance:
        return replace(self, **changes)

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def acked(self) -> bool:
        return self.acked_at is not None
