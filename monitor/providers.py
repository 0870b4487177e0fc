"""Every data provider the rule kinds read (`RuleContext.data`), for the engine's composition roots."""

from __future__ import annotations

from collections.abc import Callable

from monitor.config.models import MlmonConfig
from monitor.core.registry import merged as merge_unique
from monitor.quality import providers as quality
from monitor.spend import providers as spend
from monitor.stack import providers as stack
from monitor.store.provided import Provider


def engine_extras(config: Callable[[], MlmonConfig]) -> dict[str, Provider]:
    """Each family's providers under its key; a key two families claim is refused."""
    merged: dict[str, Provider] = {}
    for family in (stack.PROVIDERS, quality.PROVIDERS, spend.PROVIDERS, spend.bind(config)):
        merged = merge_unique(merged, family, "data provider")
    return merged
