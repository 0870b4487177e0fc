"""Every data provider the rule kinds read (`RuleContext.extra`), for the engine's composition roots."""

from __future__ import annotations

from collections.abc import Callable

from alerts.engine import Extra
from monitor.config.models import MlmonConfig
from monitor.quality import providers as quality
from monitor.spend import providers as spend
from monitor.stack import providers as stack


def engine_extras(config: Callable[[], MlmonConfig]) -> dict[str, Extra]:
    return {**stack.PROVIDERS, **quality.PROVIDERS, **spend.PROVIDERS, **spend.bind(config)}
