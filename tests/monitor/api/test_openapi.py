"""The OpenAPI document is valid and true: an OpenAPI validator accepts it, and schemathesis drives
every operation with generated requests (valid and invalid) as an admin, expecting no server
error and every answer documented and matching its schema."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.runtime import Runtime
from tests.conftest import BASIC_CONFIG, RuntimeFactory, token_headers

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis (the dev extra has it)")
openapi_spec_validator = pytest.importorskip("openapi_spec_validator", reason="pip install openapi-spec-validator")

CASES_PER_OPERATION = 30


@pytest.fixture
def served(make_runtime: RuntimeFactory) -> Iterator[tuple[Runtime, FastAPI]]:
    runtime = make_runtime(BASIC_CONFIG)
    yield runtime, create_app(runtime)


def test_every_reference_resolves_and_the_document_is_valid(served: tuple[Runtime, FastAPI]) -> None:
    _, app = served
    document = TestClient(app).get("/openapi.json").json()
    openapi_spec_validator.validate(document)
    assert "#/$defs/" not in json.dumps(document)
    for name in ("SampleIn", "EventIn", "ColumnIn", "HistogramIn", "Error"):
        assert name in document["components"]["schemas"], name
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status in ("401", "403", "404", "422", "429", "503"):
                assert status in operation["responses"], (method, path, status)
    budget = document["paths"]["/api/v1/projects/{project_id}/budget"]["put"]["requestBody"]
    assert "amount" in json.dumps(budget)  # a typed body, not a free-form object


def test_405_names_the_allowed_methods(served: tuple[Runtime, FastAPI]) -> None:
    runtime, app = served
    answer = TestClient(app).delete("/api/v1/samples", headers=token_headers(runtime))
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json()["error"]["status"] == 405


def test_generated_requests_find_no_server_error_and_no_schema_violation(served: tuple[Runtime, FastAPI]) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    runtime, app = served
    headers = token_headers(runtime)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    cases = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=CASES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            nonlocal cases
            cases += 1
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=checks, headers=headers)

        try:
            run()
        except Exception as exc:  # hypothesis re-raises the first failure it shrank; keep going
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert cases >= 1000, cases
    assert statuses[500] == 0 and statuses[503] == 0, statuses
    assert not failures, "\n\n".join(failures[:10]) + f"\n\n({len(failures)} failures)"
