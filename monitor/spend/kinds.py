"""A project's spend apart by kind: usage on GPUs, other usage, and the FOCUS charges that are not
usage (purchases and commitments, credits, adjustments), each with whether its budget counts it.

A one-year commitment bought upfront is spread over its year, but it is still not usage: a budget
owner must see it apart, and know whether the budget's figure holds it (`spend.budget.exclude`,
as cloud budgets let you leave out upfront fees and credits). A kind with no data is left out,
never shown as 0.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

from monitor.spend.budget import combine
from monitor.spend.config import BudgetConfig
from monitor.spend.ledger import SourceDays
from monitor.spend.series import Scope

KIND_LABELS: dict[Scope, str] = {
    Scope.GPU: "GPU usage",
    Scope.OTHER: "Other usage",
    Scope.PURCHASE: "Purchases and commitments",
    Scope.CREDIT: "Credits",
    Scope.ADJUSTMENT: "Adjustments",
}


@dataclass(frozen=True, slots=True)
class KindTotal:
    scope: Scope
    amount: float
    counted: bool | None
    """Whether the budget counts this kind; None without a budget."""
    why: str = ""
    """Why the budget leaves it out."""

    @property
    def label(self) -> str:
        return KIND_LABELS[self.scope]


def _counted(scope: Scope, budget: BudgetConfig | None) -> tuple[bool | None, str]:
    if budget is None:
        return None, ""
    if budget.scope == "gpu" and scope is not Scope.GPU:
        return False, "the budget counts GPU usage only (spend.budget.scope: gpu)"
    if scope.value in budget.exclude:
        return False, "left out by spend.budget.exclude"
    return True, ""


def bases_read(sources: Sequence[SourceDays], basis: str | None) -> list[str]:
    """The cost bases the totals hold: `basis` for a FOCUS bill, the only one of other sources."""
    return sorted({found for source in sources if source.spend and (found := source.basis_for(basis))})


def spend_by_kind(
    sources: Sequence[SourceDays],
    currency: str,
    basis: str | None,
    days: Collection[date],
    budget: BudgetConfig | None = None,
) -> list[KindTotal]:
    """Each kind's total over `days` from the sources in `currency` (others are the budget's
    problem, reported there), in the order of Scope."""
    wanted = set(days)
    out: list[KindTotal] = []
    for scope in Scope:
        daily = combine(sources, currency, basis, scope.value).daily
        amounts = [value for day, value in daily.items() if day in wanted]
        if not amounts:
            continue
        counted, why = _counted(scope, budget)
        out.append(KindTotal(scope, math.fsum(amounts), counted, why))
    return out
