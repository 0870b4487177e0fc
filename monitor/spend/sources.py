"""The spend sources of a configuration, and which of them a budget or rule counts. Pure.

A spend source is named `name` or, when two projects have a source of that name, `project/name`.
Sources of different kinds overlap (OpenCost allocates the cloud bill FOCUS reports; DCGM x a rate
card estimates the same GPUs), so counting all of them would double count. Unless told otherwise,
a budget counts the most authoritative kind present: every `focus` source, else every `opencost`
source, else every `dcgm` source. GPU efficiency comes from `dcgm`, else `opencost`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.config.models import MlmonConfig
from monitor.spend.series import SPEND_KINDS

BUDGET_PREFERENCE = ("focus", "opencost", "dcgm")
EFFICIENCY_PREFERENCE = ("dcgm", "opencost")


@dataclass(frozen=True, slots=True)
class SpendSource:
    project: str
    """The project the source is configured in (its readings are stored there)."""
    name: str
    kind: str
    timezone: str
    currency: str | None
    """Declared in params (OpenCost, DCGM: always; FOCUS: when `currency` is set)."""

    @property
    def ref(self) -> str:
        return f"{self.project}/{self.name}"


def spend_sources(config: MlmonConfig) -> list[SpendSource]:
    out = []
    for project in config.projects:
        for source in project.sources:
            if source.kind in SPEND_KINDS and source.enabled:
                params: dict[str, Any] = dict(source.params)
                tz = params.get("timezone", "UTC")
                currency = params.get("currency", None if source.kind == "focus" else "USD")
                out.append(SpendSource(project.id, source.name, source.kind, str(tz), currency))
    return out


class UnknownSource(ValueError):
    """A reference that names no spend source, or names two."""


def find(sources: Sequence[SpendSource], reference: str) -> SpendSource:
    if "/" in reference:
        found = [s for s in sources if s.ref == reference]
    else:
        found = [s for s in sources if s.name == reference]
    if not found:
        known = ", ".join(sorted({s.name for s in sources})) or "none configured"
        raise UnknownSource(f"no spend source (kind focus, opencost or dcgm) is named {reference!r}; known: {known}")
    if len(found) > 1:
        raise UnknownSource(
            f"{reference!r} names {len(found)} spend sources ({', '.join(s.ref for s in found)}); write project/name"
        )
    return found[0]


def counted(
    sources: Sequence[SpendSource], references: Iterable[str] | None, preference: Sequence[str] = BUDGET_PREFERENCE
) -> list[SpendSource]:
    """The sources named (raising UnknownSource), or by default every source of the preferred kind."""
    if references is not None:
        return [find(sources, r) for r in references]
    for kind in preference:
        chosen = [s for s in sources if s.kind == kind]
        if chosen:
            return chosen
    return []
