"""A small client of the MLflow tracking server's REST API (`/api/2.0/mlflow/...`) over httpx.

Only what mlmon reads: registered-model aliases and stages, runs, metric histories, run searches,
MLflow 3 logged models. MLflow's own error (`{"error_code": ..., "message": ...}`) becomes the
SourceError's text; paging follows `next_page_token` until the server stops sending one.
Facts behind the traps handled here (`runs/search` answering `{}` for no match, a missing alias
being a 400, NaN sent as the string "NaN", infinities stored as +-max float) are in
../shared/guide/sources.md section A.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from collectors.base import SourceError, SourceUnavailable
from monitor.http import send, snippet

PREFIX = "/api/2.0/mlflow"
HISTORY_PAGE = 25_000
SEARCH_PAGE = 1_000
MAX_PAGES = 1_000
FLOAT_MAX = sys.float_info.max


class MlflowApi:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        url = f"{PREFIX}/{path}"
        response = send(self.client, method, url, params=params, json=body)
        where = f"{method} {url}"
        payload: Any = None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and "error_code" in payload:
            message = (
                f"MLflow {payload['error_code']}: {payload.get('message', '')} ({where}, HTTP {response.status_code})"
            )
            if response.status_code >= 500 or response.status_code == 429:
                raise SourceUnavailable(message)
            raise SourceError(message)
        if response.status_code in (401, 403):
            raise SourceError(
                f"MLflow refused the request ({where}, HTTP {response.status_code}: {snippet(response.text, 80)}); "
                "set basic_auth (or MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD) to a user allowed to read"
            )
        if response.status_code >= 500 or response.status_code == 429:
            raise SourceUnavailable(f"{where} answered {response.status_code}: {snippet(response.text)}")
        if not response.is_success or not isinstance(payload, dict):
            raise SourceError(
                f"{where} answered {response.status_code} with {snippet(response.text, 120)!r}, not an MLflow answer; "
                "is url the tracking server's base URL?"
            )
        return payload

    # --- registered models ----------------------------------------------------------------------

    def version_by_alias(self, name: str, alias: str) -> dict[str, Any]:
        answer = self.call("GET", "registered-models/alias", params={"name": name, "alias": alias})
        return _field(answer, "model_version", f"alias {alias!r} of {name!r}")

    def version_by_stage(self, name: str, stage: str) -> dict[str, Any]:
        answer = self.call("POST", "registered-models/get-latest-versions", body={"name": name, "stages": [stage]})
        versions = [
            v for v in answer.get("model_versions") or [] if str(v.get("current_stage", "")).lower() == stage.lower()
        ]
        if not versions:
            raise SourceError(f"registered model {name!r} has no version in stage {stage!r}")
        return max(versions, key=lambda v: int(v.get("version", 0)))

    # --- runs and models ------------------------------------------------------------------------

    def run(self, run_id: str) -> dict[str, Any]:
        return _field(self.call("GET", "runs/get", params={"run_id": run_id}), "run", f"run {run_id}")

    def logged_model(self, model_id: str) -> dict[str, Any]:
        return _field(self.call("GET", f"logged-models/{model_id}"), "model", f"logged model {model_id}")

    def history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        points: list[dict[str, Any]] = []
        for page in self._pages(
            "GET", "metrics/get-history", {"run_id": run_id, "metric_key": key, "max_results": HISTORY_PAGE}
        ):
            points.extend(page.get("metrics") or [])
        return points

    def experiment_id(self, name: str) -> str:
        answer = self.call("GET", "experiments/get-by-name", params={"experiment_name": name})
        return str(_field(answer, "experiment", f"experiment {name!r}")["experiment_id"])

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str,
        order_by: list[str],
        max_results: int,
        page_size: int = SEARCH_PAGE,
    ) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        body: dict[str, Any] = {
            "experiment_ids": experiment_ids,
            "filter": filter_string,
            "order_by": order_by,
            "run_view_type": "ACTIVE_ONLY",
        }
        token: str | None = None
        for _ in range(MAX_PAGES):
            page_body = {**body, "max_results": min(page_size, max_results - len(runs))}
            if token:
                page_body["page_token"] = token
            answer = self.call("POST", "runs/search", body=page_body)
            runs.extend(answer.get("runs") or [])  # no match answers {} (no "runs" key at all)
            token = answer.get("next_page_token")
            if not token or len(runs) >= max_results:
                break
        return runs[:max_results]

    def _pages(self, method: str, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token: str | None = None
        for _ in range(MAX_PAGES):
            answer = self.call(method, path, params={**params, **({"page_token": token} if token else {})})
            yield answer
            token = answer.get("next_page_token")
            if not token:
                return
        raise SourceError(f"{path}: more than {MAX_PAGES} pages; narrow the request")


def _field(answer: dict[str, Any], name: str, what: str) -> dict[str, Any]:
    value = answer.get(name)
    if not isinstance(value, dict):
        raise SourceError(f"MLflow's answer for {what} has no {name!r}: {snippet(str(answer))}")
    return value


def metric_value(raw: Any, where: str) -> float:
    """A metric value as MLflow sends it; NaN ("NaN") and infinities (+-max float) are refused."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise SourceError(f"{where}: value {raw!r} is not a number")
    try:
        value = float(raw)
    except ValueError:
        raise SourceError(f"{where}: value {raw!r} is not a number") from None
    if value != value:
        raise SourceError(f"{where}: value is NaN")
    if abs(value) >= FLOAT_MAX:
        # MLflow stores +-infinity as +-sys.float_info.max.
        raise SourceError(f"{where}: value is {'+' if value > 0 else '-'}infinity (MLflow sends it as {value!r})")
    return value


def model_id_of(version: Mapping[str, Any]) -> str | None:
    """The MLflow 3 logged model behind a model version (`source` is `models:/<model_id>`)."""
    source = str(version.get("source") or "")
    if source.startswith("models:/m-"):
        return source.removeprefix("models:/").split("/", 1)[0]
    return None
