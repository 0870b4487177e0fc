"""Spend by kind: each FOCUS charge kind apart, whether a budget counts it, and no row for a kind
without data (never a 0 standing for "nothing read")."""

from __future__ import annotations

from datetime import date

import monitor.config.models  # noqa: F401  (loads the config package before the spend modules)
from monitor.spend.config import BudgetConfig
from monitor.spend.kinds import bases_read, spend_by_kind
from monitor.spend.ledger import SourceDays
from monitor.spend.series import Scope
from monitor.spend.sources import SpendSource

DAYS = [date(2026, 11, d) for d in range(1, 4)]


def source(name: str, currency: str | None, spend: dict[tuple[str, str], dict[date, float]]) -> SourceDays:
    days = SourceDays(SpendSource("finops", name, "focus", "UTC", currency), currency, None)
    days.spend.update(spend)
    return days


def bill() -> SourceDays:
    return source(
        "aws",
        "USD",
        {
            ("billed", "gpu"): {DAYS[0]: 10.0, DAYS[1]: 10.0, date(2026, 10, 31): 99.0},
            ("effective", "gpu"): {DAYS[0]: 8.0, DAYS[1]: 8.0},
            ("billed", "other"): {DAYS[0]: 0.0},
            ("billed", "purchase"): {DAYS[2]: 30.0},
        },
    )


def test_each_kind_with_data_is_totalled_over_the_days_and_the_rest_left_out() -> None:
    found = spend_by_kind([bill()], "USD", "billed", DAYS)
    assert [(k.scope, k.amount, k.counted) for k in found] == [
        (Scope.GPU, 20.0, None),  # the day before the period is not in it
        (Scope.OTHER, 0.0, None),  # a real zero read from the bill is shown
        (Scope.PURCHASE, 30.0, None),
    ]  # no credit or adjustment row: none was read
    assert [k.label for k in found] == ["GPU usage", "Other usage", "Purchases and commitments"]
    assert spend_by_kind([bill()], "USD", "effective", DAYS)[0].amount == 16.0


def test_a_budget_says_which_kinds_it_counts_and_why_not() -> None:
    excluding = BudgetConfig.model_validate({"amount": 100, "exclude": ["purchase"]})
    found = {k.scope: (k.counted, k.why) for k in spend_by_kind([bill()], "USD", "billed", DAYS, excluding)}
    assert found == {
        Scope.GPU: (True, ""),
        Scope.OTHER: (True, ""),
        Scope.PURCHASE: (False, "left out by spend.budget.exclude"),
    }
    gpu_only = BudgetConfig.model_validate({"amount": 100, "scope": "gpu"})
    found = {k.scope: k.counted for k in spend_by_kind([bill()], "USD", "billed", DAYS, gpu_only)}
    assert found == {Scope.GPU: True, Scope.OTHER: False, Scope.PURCHASE: False}


def test_a_source_in_another_currency_is_not_added_in() -> None:
    euros = source("gcp", "EUR", {("billed", "gpu"): {DAYS[0]: 1000.0}})
    waiting = source("azure", None, {})
    found = spend_by_kind([bill(), euros, waiting], "USD", "billed", DAYS)
    assert found[0].scope is Scope.GPU and found[0].amount == 20.0


def test_the_bases_read_are_the_budgets_for_a_bill_and_the_only_one_of_other_sources() -> None:
    cluster = source("k8s", "USD", {("allocated", "gpu"): {DAYS[0]: 5.0}})
    waiting = source("azure", None, {})
    assert bases_read([bill()], "effective") == ["effective"]
    assert bases_read([bill(), cluster, waiting], "billed") == ["allocated", "billed"]
    assert spend_by_kind([cluster], "USD", "billed", DAYS)[0].amount == 5.0  # as the budget counts it
