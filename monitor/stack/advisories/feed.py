"""The advisory feed seam: where advisory records come from, behind one small interface.

An adapter (one per file: `offline.OfflineFeed`, `osv_api.OsvApiFeed`) fetches records and hands
them back parsed (`LoadResult`: the records and those refused); storing them as a revision
is the sync's job. What an adapter may use to fetch less (the records it already holds and the
packages installed) comes in as plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.stack.advisories.offline import LoadResult

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Holdings:
    """What the store holds, for a feed that can ask for only what changed."""

    modified: Mapping[str, datetime | None]
    """The current record of each advisory ID and when it was last modified."""
    packages: Set[str]
    """Every package installed in some project."""


class AdvisoryFeed(Protocol):
    @property
    def kind(self) -> str:
        """`offline` or `osv-api`: stored with the feed's status and shown on the pages."""
        ...

    @property
    def location(self) -> str: ...

    def fetch(self, holdings: Holdings, progress: Progress | None) -> LoadResult:
        """The feed's records (all, or those newer than `holdings`). Raises SourceError,
        OfflineSourceError or OSError when the feed cannot be read."""
        ...
