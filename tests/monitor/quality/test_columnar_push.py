"""Arrow IPC and Parquet bodies of POST /api/v1/quality/distributions: the same statistics as the
JSON push of the same data, exact Wasserstein from the stored reference values, histogram pushes
labelled approximate with their bound, and bad bodies refused naming the column."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from fastapi.testclient import TestClient
from scipy.stats import ks_2samp, wasserstein_distance

from alerts.engine import AlertEngine
from alerts.kinds import REGISTRY
from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from tests.conftest import RuntimeFactory, token_headers
from tests.monitor.quality.test_distributions import CONFIG, LABELS, World

URL = "/api/v1/quality/distributions"


@pytest.fixture
def world(make_runtime: RuntimeFactory, db_url: str, clock: FrozenClock) -> Iterator[World]:
    runtime = make_runtime(CONFIG, database_url=db_url, clock=clock)
    engine = AlertEngine(runtime.store, clock, REGISTRY, lambda: runtime.config)
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        yield World(runtime, client, clock, engine)


STREAM = "application/vnd.apache.arrow.stream"


def _stream(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=1000):  # several record batches
            writer.write_batch(batch)
    return sink.getvalue()


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _post(world: World, body: bytes, media: str, role: str, dataset: str = "features", **query: str) -> Any:
    params = {"project": "churn", "dataset": dataset, "role": role, "labels": json.dumps(LABELS), **query}
    return world.client.post(URL, content=body, params=params, headers={"content-type": media})


def test_arrow_and_parquet_match_json_and_the_exact_statistics(world: World) -> None:
    rng = np.random.default_rng(7)
    ref_age = rng.standard_normal(5000)
    cur_age = rng.standard_normal(3000) + 0.3
    cur_age[:3] = 1000.0  # the tails count: exact Wasserstein, not 1,000 quantiles
    plan = pa.array(np.where(rng.random(5000) < 0.3, "pro", "basic"))
    reference = pa.table({"age": pa.array(ref_age), "plan": plan, "visits": pa.array(rng.integers(0, 4, 5000))})
    assert _post(world, _stream(reference), STREAM, "reference").status_code == 200
    current = pa.table(
        {
            "age": pa.array(cur_age.tolist()[:-1] + [None]),
            "plan": pa.array(np.where(rng.random(3000) < 0.5, "pro", "basic")),
            "visits": pa.array(rng.integers(0, 4, 3000)),
        }
    )
    answer = _post(world, _parquet(current), "application/vnd.apache.parquet", "current")
    assert answer.status_code == 200, answer.text
    age = answer.json()["columns"]["age"]
    assert age["approximate"] is False and age["test"] == "ks"
    exact = wasserstein_distance(ref_age, cur_age[:-1]) / ref_age.std()
    assert abs(age["statistics"]["wasserstein"] - exact) < 1e-9
    assert abs(age["statistics"]["p_value"] - ks_2samp(ref_age, cur_age[:-1]).pvalue) < 1e-9
    assert age["statistics"]["missing_share"] == 1 / 3000
    as_json = world.client.post(
        URL,
        json={
            "project": "churn", "dataset": "features", "labels": LABELS, "role": "current",
            "columns": {"age": {"values": cur_age.tolist()[:-1] + [None]},
                        "plan": {"values": current.column("plan").to_pylist()},
                        "visits": {"values": current.column("visits").to_pylist()}},
        },
    )  # fmt: skip
    assert as_json.status_code == 200, as_json.text
    for column in ("age", "plan", "visits"):
        assert as_json.json()["columns"][column]["statistics"] == answer.json()["columns"][column]["statistics"]


def test_histogram_pushes_are_approximate_with_a_bound(world: World) -> None:
    rng = np.random.default_rng(3)
    edges = np.linspace(-5, 5, 41)
    ref, cur = rng.standard_normal(20_000), rng.standard_normal(20_000) + 0.2
    push = {"project": "churn", "dataset": "hist", "labels": LABELS}
    reference = {"score": {"histogram": {"edges": edges.tolist(), "counts": np.histogram(ref, edges)[0].tolist()}}}
    assert world.client.post(URL, json={**push, "role": "reference", "columns": reference}).status_code == 200
    current = {"score": {"histogram": {"edges": edges.tolist(), "counts": np.histogram(cur, edges)[0].tolist()}}}
    answer = world.client.post(URL, json={**push, "role": "current", "columns": current})
    assert answer.status_code == 200, answer.text
    score = answer.json()["columns"]["score"]
    assert score["approximate"] is True
    stats = score["statistics"]
    exact = wasserstein_distance(ref, cur) / ref.std()
    assert abs(stats["wasserstein"] - exact) <= stats["wasserstein_error_bound"]
    other = {"score": {"histogram": {"edges": np.linspace(-4, 4, 41).tolist(), "counts": [1] * 40}}}
    refused = world.client.post(URL, json={**push, "role": "current", "columns": other})
    assert refused.status_code == 422
    text = refused.text
    assert "columns.score" in text and "[-4, -3.8," in text and "the reference's [-5, -4.75," in text


def test_bad_arrow_bodies_are_refused_naming_the_column(world: World) -> None:
    reference = pa.table({"age": pa.array([1.0, 2.0, 3.0] * 50)})
    assert _post(world, _stream(reference), STREAM, "reference", dataset="bad").status_code == 200
    not_arrow = _post(world, b"this is not arrow", STREAM, "current", dataset="bad")
    assert not_arrow.status_code == 422 and '"where":"body"' in not_arrow.text
    text_in_numbers = _post(world, _stream(pa.table({"age": pa.array(["41", "x"])})), STREAM, "current", dataset="bad")
    assert text_in_numbers.status_code == 422
    assert "columns.age" in text_in_numbers.text and "the reference is numeric but row 0" in text_in_numbers.text
    nan = _post(world, _stream(pa.table({"age": pa.array([1.0, float("nan")])})), STREAM, "current", dataset="bad")
    assert nan.status_code == 422 and "columns.age" in nan.text and "NaN and infinity are not allowed" in nan.text
    odd = pa.table({"age": pa.array([[1.0], [2.0]])})
    listed = _post(world, _stream(odd), STREAM, "current", dataset="bad")
    assert listed.status_code == 422 and "columns.age" in listed.text and "neither numeric nor text" in listed.text
    assert world.client.get("/api/v1/quality/comparisons", params={"project": "churn", "dataset": "bad"}).json() == []
