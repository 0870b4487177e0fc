"""What the spend rule kinds share: their data (the `spend` provider) and how amounts read."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from alerts.kinds.base import KindParams, RuleContext
from monitor.spend.providers import SPEND
from monitor.spend.report import ProjectSpend

NOT_WIRED = (
    "no spend data: the `spend` provider is not registered with the alert engine "
    "(monitor.spend.providers.bind; see docs/spend.md)"
)


def spend_of(ctx: RuleContext) -> ProjectSpend | None:
    return ctx.data(SPEND)


def money(amount: float | None, currency: str) -> str:
    """12,345.67 USD"""
    return "unknown" if amount is None else f"{amount:,.2f} {currency}"


class SourcesParams(KindParams):
    """Which spend sources a rule reads, and which of their costs."""

    sources: list[str] | None = None
    cost: Literal["billed", "effective"] = "billed"
    scope: Literal["all", "gpu"] = "all"

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("sources must name at least one spend source (or be left out)")
        return value
