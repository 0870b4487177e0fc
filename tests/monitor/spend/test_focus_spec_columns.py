"""The FOCUS column names mlmon reads, checked against the FOCUS 1.0, 1.1 and 1.2 specifications and
the 1.2 example files (tests/data/focus_spec, from the FinOps FOCUS_Spec repository)."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pytest

import monitor.config.models  # noqa: F401  (loads the config package before the spend modules)
from collectors.spend.focus_params import FocusParams
from collectors.spend.focus_reader import read_focus_file
from collectors.spend.focus_rows import MANDATORY, QUANTITY_COLUMNS, TAGS, USAGE_PAIRS
from collectors.spend.focus_sql import CATEGORIES
from monitor.spend.series import ATTRIBUTED, BASIS, SCOPE, currency_of_metric, zone

SPEC = Path(__file__).resolve().parents[2] / "data" / "focus_spec"
VERSIONS = ("1.0", "1.1", "1.2")


def columns(version: str) -> set[str]:
    return set((SPEC / f"columns_{version}.txt").read_text(encoding="utf-8").split())


@pytest.mark.parametrize("version", VERSIONS)
def test_every_column_mlmon_requires_or_reads_is_a_focus_column(version: str) -> None:
    spec = columns(version)
    read = {*MANDATORY, *QUANTITY_COLUMNS, *(c for pair in USAGE_PAIRS for c in pair), TAGS}
    read |= {"ChargeCategory", "ChargeDescription", "SubAccountId", "ResourceId"}
    if version != "1.0":
        read.add("SkuPriceDetails")  # added in 1.1; a 1.0 file has none and the descriptions decide
    assert read <= spec, read - spec
    assert "SkuPriceDetails" not in columns("1.0")


def test_nothing_mlmon_reads_was_removed_between_versions() -> None:
    assert columns("1.0") <= columns("1.1") <= columns("1.2")


def test_the_spec_example_files_use_the_spec_names_except_its_own_typo() -> None:
    spec = columns("1.2")
    odd = set()
    lines = (SPEC / "example_headers_1.2.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 26
    for line in lines:
        _path, header = line.split("|", 1)
        for name in header.split(","):
            name = name.removeprefix("\ufeff")
            if name not in spec and not name.startswith("x_"):
                odd.add(name)
    assert odd == {"SkuPriceid"}  # a typo in one 1.2 example for SkuPriceId


def test_charge_categories_are_those_of_the_spec() -> None:
    text = (SPEC / "columns_1.2.txt").read_text(encoding="utf-8")
    assert "ChargeCategory" in text
    assert set(CATEGORIES) == {"usage", "purchase", "tax", "credit", "adjustment"}


def test_the_spec_upfront_purchase_scenario_is_spread_over_its_year_as_a_purchase(tmp_path: Path) -> None:
    """Scenario 1 of the 1.2 commitment discount examples, with the BillingCurrency it lacks added."""
    lines = (SPEC / "commitment_discount_purchase_scenario_1.csv").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "scenario_1.csv"
    path.write_text("\n".join([lines[0] + ",BillingCurrency", *(row + ",USD" for row in lines[1:])]) + "\n")
    params = FocusParams.model_validate(
        {"path": "unused", "attribution": [{"column": "ResourceId", "matches": ".*", "project": "platform"}]}
    )
    aggregate = read_focus_file(path, params, zone("UTC"))
    billed: dict[tuple[str, date], float] = {}
    for (metric, labels), per_day in aggregate.totals.values.items():
        label = dict(labels)
        if currency_of_metric(metric) and label[BASIS] == "billed" and label[ATTRIBUTED] == "platform":
            billed.update({(label[SCOPE], d): v for d, v in per_day.items()})
    assert {scope for scope, _ in billed} == {"purchase"}
    assert min(d for _, d in billed) == date(2023, 1, 1) and max(d for _, d in billed) == date(2023, 12, 31)
    assert math.isclose(sum(billed.values()), 8760.0, abs_tol=1e-6)  # not 8,760 on one day
    assert max(billed.values()) == pytest.approx(24.0)
