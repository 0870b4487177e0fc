"""Seed a running MLflow tracking server through the MLflow client (run by .venv-mlflow's Python).

    .venv-mlflow/bin/python tests/monitor/quality/mlflow_seed.py http://127.0.0.1:PORT < commands.json

Reads a JSON list of commands on stdin and prints a JSON list of their results:

    {"op": "experiment", "name": "churn"}                                   -> experiment id
    {"op": "run", "experiment_id": "1", "name": "train-0", "tags": {...},
     "metrics": {"accuracy": [0.81, 0.85]}, "timestamp_ms": 1795650000000,
     "logged_model": true, "model_metrics": {"eval_accuracy": 0.87}}     -> {"run_id", "model_id"}
    {"op": "register", "name": "churn-classifier", "run_id": "...", "model_id": "..."}  -> version
    {"op": "alias", "name": "...", "alias": "production", "version": "2"}  -> null
    {"op": "stage", "name": "...", "version": "2", "stage": "Production"}  -> null
    {"op": "version_tag", "name": "...", "version": "2", "key": "k", "value": "v"}      -> null

Not part of mlmon: the mlflow package lives in its own venv so its pins cannot fight mlmon's.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any

from mlflow import MlflowClient


def run(client: MlflowClient, command: dict[str, Any]) -> Any:
    op = command["op"]
    if op == "experiment":
        return client.create_experiment(command["name"])
    if op == "run":
        created = client.create_run(
            command["experiment_id"], run_name=command.get("name"), tags=command.get("tags") or {}
        )
        run_id = created.info.run_id
        stamp = int(command.get("timestamp_ms") or time.time() * 1000)
        model_id = None
        if command.get("logged_model"):
            model_id = client.create_logged_model(command["experiment_id"], name="model", source_run_id=run_id).model_id
        for key, values in (command.get("metrics") or {}).items():
            for step, value in enumerate(values if isinstance(values, list) else [values]):
                client.log_metric(run_id, key, float(value), timestamp=stamp + step, step=step)
        for key, value in (command.get("model_metrics") or {}).items():
            client.log_metric(run_id, key, float(value), timestamp=stamp + 100, step=0, model_id=model_id)
        client.set_terminated(run_id)
        return {"run_id": run_id, "model_id": model_id}
    if op == "register":
        with contextlib.suppress(Exception):  # already there: add a version
            client.create_registered_model(command["name"])
        source = f"models:/{command['model_id']}" if command.get("model_id") else f"runs:/{command['run_id']}/model"
        version = client.create_model_version(
            command["name"], source, run_id=command["run_id"], model_id=command.get("model_id")
        )
        return version.version
    if op == "alias":
        client.set_registered_model_alias(command["name"], command["alias"], command["version"])
        return None
    if op == "stage":
        client.transition_model_version_stage(command["name"], command["version"], command["stage"])
        return None
    if op == "version_tag":
        client.set_model_version_tag(command["name"], command["version"], command["key"], command["value"])
        return None
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    client = MlflowClient(tracking_uri=sys.argv[1])
    results = [run(client, command) for command in json.loads(sys.stdin.read())]
    sys.stdout.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
