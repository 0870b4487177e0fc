"""What changed between two inventories ("torch 2.14.1 -> 2.15.0"), and the checkpoint an
inventory source leaves for the next run and for the stack tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from monitor.stack.inventory.model import Inventory
from monitor.stack.versions import parse_version

ChangeKind = Literal["upgrade", "downgrade", "rebuild", "added", "removed"]
MAX_CHANGES = 500


@dataclass(frozen=True, slots=True)
class Change:
    package: str
    kind: ChangeKind
    old: str | None
    new: str | None

    def message(self) -> str:
        if self.kind == "added":
            return f"{self.package} {self.new} added"
        if self.kind == "removed":
            return f"{self.package} {self.old} removed"
        return f"{self.package} {self.old} -> {self.new}"


def _direction(old: str, new: str) -> ChangeKind:
    a, b = parse_version(old), parse_version(new)
    if a is None or b is None:
        return "upgrade" if new > old else "downgrade"
    if a.public == b.public:
        return "rebuild"
    return "upgrade" if b > a else "downgrade"


def changes(old: Inventory | None, new: Inventory) -> list[Change]:
    """Version changes per package (none for the first inventory: it is the baseline)."""
    if old is None:
        return []
    out: list[Change] = []
    names = sorted(set(old.names()) | set(new.names()))
    for name in names:
        before, after = set(old.versions(name)), set(new.versions(name))
        if before == after:
            continue
        if len(before) == 1 and len(after) == 1:
            (a,), (b,) = before, after
            out.append(Change(name, _direction(a, b), a, b))
            continue
        out.extend(Change(name, "removed", v, None) for v in sorted(before - after))
        out.extend(Change(name, "added", None, v) for v in sorted(after - before))
    torch_first = sorted(out, key=lambda c: (c.package != "torch", c.package))
    return torch_first[:MAX_CHANGES]


def to_checkpoint(inventory: Inventory, collected_at: datetime) -> dict[str, Any]:
    return {"inventory": inventory.to_doc(), "collected_at": collected_at.isoformat(), "digest": inventory.digest()}


def from_checkpoint(checkpoint: Mapping[str, Any] | None) -> tuple[Inventory, datetime] | None:
    """The inventory a stack source left in its checkpoint, and when it was read."""
    if not checkpoint or not isinstance(checkpoint.get("inventory"), Mapping):
        return None
    collected = checkpoint.get("collected_at")
    if not isinstance(collected, str):
        return None
    try:
        when = datetime.fromisoformat(collected)
    except ValueError:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return Inventory.from_doc(checkpoint["inventory"]), when.astimezone(UTC)
