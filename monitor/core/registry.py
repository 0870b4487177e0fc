"""Registries keyed by name that refuse a name given twice, as prometheus_client's registry does:
a second source kind, rule kind or data provider under a taken name is a programming error to
report at import, not an entry that silently replaces the first."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")


class DuplicateName(ValueError):
    """Two entries of one registry under one name."""


def by_name(entries: Iterable[T], name: Callable[[T], str], what: str) -> dict[str, T]:
    out: dict[str, T] = {}
    for entry in entries:
        key = name(entry)
        if key in out:
            raise DuplicateName(f"{what} {key!r} registered twice")
        out[key] = entry
    return out


def merged(first: Mapping[str, T], second: Mapping[str, T], what: str) -> dict[str, T]:
    """`first` and `second` as one registry, refusing a name both hold."""
    clash = sorted(first.keys() & second.keys())
    if clash:
        raise DuplicateName(f"{what} {', '.join(map(repr, clash))} registered twice")
    return {**first, **second}
