"""Typed per-project data that a family provides to the rule kinds that read it.

A family names its data with a `DataKey[T]` and registers a `Provider` under that key; a rule kind
lists the keys it reads and gets `T` back from `RuleContext.data(key)`. The key's type ties the
producer to its readers, where a bare string (`"spend"`, `data: Any`) tied nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from monitor.store.store import Store

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DataKey(Generic[T]):
    """The name of one kind of per-project data, typed by what its provider returns per project."""

    name: str


Provider = Callable[[Store, frozenset[str], datetime], Mapping[str, Any]]
"""A data provider for rule kinds: (store, projects, now) -> {project: data}."""
