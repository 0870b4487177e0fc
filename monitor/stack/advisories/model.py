"""OSV records as typed values, checked on the way in.

A record that breaks the OSV schema in a way that matters for matching (no id, no `modified`, an
event with two kinds, ranges that are not lists...) is refused with an AdvisoryError naming the
field. Version strings are kept as written: whether they are PEP 440 is the matcher's question,
answered per range, so one odd bound never hides the rest of the record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from monitor.core.errors import StackError
from monitor.stack.versions import canonical_name

EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
EVENT_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")
PYPI = "PyPI"
_FRACTION = re.compile(r"\.(\d+)")


class AdvisoryError(StackError):
    """An OSV record that cannot be used, with the field that is wrong."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    version: str


@dataclass(frozen=True, slots=True)
class Range:
    type: str
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class SeverityScore:
    type: str
    score: str


@dataclass(frozen=True, slots=True)
class Affected:
    ecosystem: str
    name: str
    """PEP 503 normalised package name."""
    raw_name: str
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]
    severity: tuple[SeverityScore, ...] = ()


@dataclass(frozen=True)
class Advisory:
    id: str
    modified: datetime
    published: datetime | None
    withdrawn: datetime | None
    aliases: tuple[str, ...]
    summary: str
    details: str
    severity: tuple[SeverityScore, ...]
    affected: tuple[Affected, ...]
    label: str | None
    """The database's own severity word (GHSA `database_specific.severity`)."""
    doc: Mapping[str, Any]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset((self.id, *self.aliases))

    def packages(self) -> set[str]:
        """Normalised names of the PyPI packages the record names."""
        return {a.name for a in self.affected if a.ecosystem == PYPI}

    def title(self) -> str:
        if self.summary:
            return self.summary
        first = self.details.strip().split("\n", 1)[0]
        return first if len(first) <= 160 else first[:157] + "..."


def parse_time(value: object, where: str, required: bool = False) -> datetime | None:
    """An RFC 3339 timestamp (any number of fraction digits, `Z` or an offset)."""
    if value is None or value == "":
        if required:
            raise AdvisoryError(where, "required timestamp is missing")
        return None
    if not isinstance(value, str):
        raise AdvisoryError(where, f"expected an RFC 3339 timestamp string, got {type(value).__name__}")
    text = value.strip().replace("z", "Z")
    text = text[:-1] + "+00:00" if text.endswith("Z") else text
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AdvisoryError(where, f"expected an RFC 3339 timestamp, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AdvisoryError(where, "expected a list of strings")
    return tuple(value)


def _severity(value: object, where: str) -> tuple[SeverityScore, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise AdvisoryError(where, "expected a list of {type, score}")
    out = []
    for index, item in enumerate(value):
        if (
            not isinstance(item, Mapping)
            or not isinstance(item.get("type"), str)
            or not isinstance(item.get("score"), str)
        ):
            raise AdvisoryError(f"{where}[{index}]", "expected {type: string, score: string}")
        out.append(SeverityScore(item["type"], item["score"]))
    return tuple(out)


def _event(value: object, where: str) -> Event:
    if not isinstance(value, Mapping):
        raise AdvisoryError(where, "expected an event object")
    kinds = [k for k in EVENT_KINDS if k in value]
    if len(kinds) != 1:
        raise AdvisoryError(
            where, f"expected exactly one of introduced, fixed, last_affected, limit; got {sorted(value)}"
        )
    version = value[kinds[0]]
    if not isinstance(version, str):
        raise AdvisoryError(f"{where}.{kinds[0]}", f"expected a version string, got {version!r}")
    return Event(kinds[0], version)


def _range(value: object, where: str) -> Range:
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
        raise AdvisoryError(where, "expected a range with a string `type`")
    events = value.get("events")
    if not isinstance(events, list) or not events:
        raise AdvisoryError(f"{where}.events", "expected a non-empty list of events")
    return Range(value["type"], tuple(_event(e, f"{where}.events[{i}]") for i, e in enumerate(events)))


def _affected(value: object, where: str) -> Affected:
    if not isinstance(value, Mapping):
        raise AdvisoryError(where, "expected an object")
    pkg = value.get("package")
    if not isinstance(pkg, Mapping):
        raise AdvisoryError(f"{where}.package", "expected {ecosystem, name}")
    ecosystem, name = pkg.get("ecosystem"), pkg.get("name")
    if not isinstance(ecosystem, str) or not isinstance(name, str):
        raise AdvisoryError(f"{where}.package", "expected string `ecosystem` and `name`")
    ranges = value.get("ranges") or []
    if not isinstance(ranges, list):
        raise AdvisoryError(f"{where}.ranges", "expected a list")
    return Affected(
        ecosystem=ecosystem.split(":", 1)[0],
        name=canonical_name(name),
        raw_name=name,
        ranges=tuple(_range(r, f"{where}.ranges[{i}]") for i, r in enumerate(ranges)),
        versions=_strings(value.get("versions"), f"{where}.versions"),
        severity=_severity(value.get("severity"), f"{where}.severity"),
    )


def parse_advisory(doc: object, where: str = "advisory") -> Advisory:
    """An OSV record from its JSON object; AdvisoryError names the first field that is wrong."""
    if not isinstance(doc, Mapping):
        raise AdvisoryError(where, f"expected a JSON object, got {type(doc).__name__}")
    ident = doc.get("id")
    if not isinstance(ident, str) or not ident.strip():
        raise AdvisoryError(f"{where}.id", "required string is missing")
    at = f"{ident}"
    affected = doc.get("affected") or []
    if not isinstance(affected, Sequence) or isinstance(affected, str):
        raise AdvisoryError(f"{at}.affected", "expected a list")
    modified = parse_time(doc.get("modified"), f"{at}.modified", required=True)
    assert modified is not None
    database = doc.get("database_specific")
    label = database.get("severity") if isinstance(database, Mapping) else None
    return Advisory(
        id=ident.strip(),
        modified=modified,
        published=parse_time(doc.get("published"), f"{at}.published"),
        withdrawn=parse_time(doc.get("withdrawn"), f"{at}.withdrawn"),
        aliases=_strings(doc.get("aliases"), f"{at}.aliases"),
        summary=str(doc.get("summary") or ""),
        details=str(doc.get("details") or ""),
        severity=_severity(doc.get("severity"), f"{at}.severity"),
        affected=tuple(_affected(a, f"{at}.affected[{i}]") for i, a in enumerate(affected)),
        label=label if isinstance(label, str) and label else None,
        doc=doc,
    )
