"""Configuration checks of the quality family that span sections (see monitor.config.loader.ExtraCheck).

- a `torch_eval` source's `max_seconds` must be below the source's `timeout`: otherwise the runner
  gives up on the run first and the evaluation process is left to the time bound alone;
- a `change` rule's `lookback` must fit in `retention.raw`: the detector reads raw points.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from monitor.config.loader import ExtraCheck, Loc
from monitor.config.models import MlmonConfig
from monitor.core.durations import format_duration, parse_duration


def _duration(value: object) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except (TypeError, ValueError):
        return None  # the kind's own params check reports it


def torch_eval_bounds(config: MlmonConfig) -> Iterator[tuple[Loc, str]]:
    for pi, project in enumerate(config.projects):
        for si, source in enumerate(project.sources):
            if source.kind != "torch_eval":
                continue
            limit = _duration(source.params.get("max_seconds"))
            if limit is not None and limit >= source.timeout:
                yield (
                    ("projects", pi, "sources", si, "params", "max_seconds"),
                    f"source {source.name!r}: max_seconds {format_duration(limit)} must be below the source's "
                    f"timeout {format_duration(source.timeout)} (raise timeout or lower max_seconds)",
                )


def change_lookback(config: MlmonConfig) -> Iterator[tuple[Loc, str]]:
    raw = config.retention.raw
    for index, rule in enumerate(config.rules):
        if rule.kind != "change":
            continue
        lookback = _duration(rule.params.get("lookback", "7d"))
        if lookback is not None and lookback > raw:
            yield (
                ("rules", index, "params", "lookback"),
                f"rule {rule.name!r}: lookback {format_duration(lookback)} is longer than retention.raw "
                f"{format_duration(raw)}; the detector reads raw points",
            )


CHECKS: list[ExtraCheck] = [torch_eval_bounds, change_lookback]
