"""The `focus` source reading a SQL query over the user's own FOCUS table, on DuckDB (duckdb-engine)
and PostgreSQL: the same daily totals as reading the real sample file, and the same row errors."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import monitor.config.models  # noqa: F401  (loads the config package before the spend modules)
from collectors.spend.focus_params import FocusParams
from collectors.spend.focus_query import read_focus_query
from collectors.spend.focus_reader import FileAggregate, FocusFileError, read_focus_file
from monitor.spend.series import ATTRIBUTED, BASIS, SCOPE, currency_of_metric, zone
from tests.monitor.spend.focus_data import read_rows, sample_csv

NUMERIC = {"BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity", "PricingQuantity"}
MOMENTS = {"ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"}


def totals(aggregate: FileAggregate) -> dict[tuple[str, str, str, object], float]:
    out: dict[tuple[str, str, str, object], float] = defaultdict(float)
    for (metric, labels), per_day in aggregate.totals.values.items():
        label = dict(labels)
        for day, value in per_day.items():
            key = (metric if not currency_of_metric(metric) else "spend", label[ATTRIBUTED], label.get(BASIS, ""), day)
            out[(*key[:3], f"{label.get(SCOPE, '')}/{day}")] += value
    return dict(out)


def params(query: str) -> FocusParams:
    return FocusParams.model_validate(
        {"query": query, "database_url_env": "FOCUS_DB", "attribution": [{"tag": "application"}]}
    )


def load(url: str, table: str, rows: list[dict[str, str]], header: list[str]) -> None:
    engine = create_engine(url)
    postgres = engine.dialect.name == "postgresql"

    def kind(name: str) -> str:
        if name in NUMERIC:
            return "NUMERIC(30, 12)" if postgres else "DECIMAL(30, 12)"
        if name in MOMENTS:
            return "TIMESTAMPTZ"
        return "JSONB" if (name == "Tags" and postgres) else "VARCHAR"

    columns = ", ".join(f'"{h}" {kind(h)}' for h in header)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} ({columns})"))
        marks = ", ".join(f":p{i}" for i in range(len(header)))
        quoted = ", ".join(f'"{h}"' for h in header)
        values = [
            {
                f"p{i}": (None if row[h] in ("NULL", "") else row[h] + ("Z" if h in MOMENTS else ""))
                for i, h in enumerate(header)
            }
            for row in rows
        ]
        conn.execute(text(f"INSERT INTO {table} ({quoted}) VALUES ({marks})"), values)
    engine.dispose()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL, table) holding the real FOCUS sample."""
    header, rows = read_rows(sample_csv())
    if request.param == "duckdb":
        url, table = f"duckdb:///{tmp_path / 'warehouse.duckdb'}", "focus"
        load(url, table, rows, header)
        yield url, table
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"warehouse_{uuid.uuid4().hex[:8]}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    load(url, f"{schema}.focus", rows, header)
    yield url, f"{schema}.focus"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def test_a_query_over_the_users_table_adds_up_as_the_file_does(warehouse: tuple[str, str]) -> None:
    url, table = warehouse
    got = read_focus_query(url, params(f"SELECT * FROM {table}"), zone("UTC"), 30.0, None)
    file = FocusParams.model_validate({"path": "unused", "attribution": [{"tag": "application"}]})
    want = read_focus_file(sample_csv(), file, zone("UTC"))
    assert (got.rows, got.unattributed_rows, got.gpu_rows, got.currency) == (1000, 340, 10, "USD")
    assert got.projects == want.projects
    a, b = totals(got), totals(want)
    assert a.keys() == b.keys()
    assert all(math.isclose(a[k], b[k], abs_tol=1e-6) for k in a)


def test_a_bad_value_in_the_query_is_named_by_row_and_column(warehouse: tuple[str, str]) -> None:
    url, table = warehouse
    query = (
        f"SELECT * FROM {table} WHERE \"ChargePeriodStart\" < TIMESTAMPTZ '2024-09-01 05:00:00+00' "
        f"UNION ALL SELECT * FROM {table} WHERE 1 = 0"
    )
    swapped = f'SELECT "BilledCost", "EffectiveCost", "BillingCurrency", "ChargePeriodEnd" AS "ChargePeriodStart", "ChargePeriodStart" AS "ChargePeriodEnd", "Tags" FROM ({query}) q'
    with pytest.raises(FocusFileError) as caught:
        read_focus_query(url, params(swapped), zone("UTC"), 30.0, None)
    assert caught.value.column == "ChargePeriodEnd" and caught.value.row is not None
    assert "the charge period ends before it starts" in str(caught.value)


def test_the_source_reads_the_url_from_the_environment(tmp_path: Path) -> None:
    from collectors.base import CollectContext, SourceError
    from collectors.spend.focus import FocusCollector
    from monitor.http import HttpFactory

    collector = FocusCollector(params("SELECT 1"))
    ctx = CollectContext("finops", "bill", datetime(2024, 10, 2, tzinfo=UTC), 30.0, None, None, {}, HttpFactory(), {})  # type: ignore[arg-type]
    with pytest.raises(SourceError, match="environment variable FOCUS_DB"):
        collector.collect(ctx)
