"""Advice on job queues: a source whose queue no declared worker serves would wait for ever."""

from __future__ import annotations

from collections.abc import Iterator

from monitor.config.loader import Loc
from monitor.config.models import MlmonConfig


def unserved_queues(config: MlmonConfig) -> Iterator[tuple[Loc, str]]:
    """(location, why) of each enabled source on a queue missing from `workers.queues`."""
    served = set(config.workers.queues)
    for p_index, project in enumerate(config.projects):
        for s_index, source in enumerate(project.sources):
            if source.enabled and source.queue not in served:
                yield (
                    ("projects", p_index, "sources", s_index, "queue"),
                    f"queue {source.queue!r} is served by no worker listed in workers.queues "
                    f"({', '.join(sorted(served)) or 'none'}); on PostgreSQL its runs wait until one runs "
                    f"`mlmon worker --queues {source.queue}` (then list {source.queue!r} in workers.queues)",
                )


WARNINGS = [unserved_queues]
