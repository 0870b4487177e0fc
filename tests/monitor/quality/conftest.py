"""Real peers of the quality tests: an MLflow tracking server (from its own venv) and its seeder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import REPO, free_port, missing, wait_until

MLFLOW_VERSION = "3.17.2"
MLFLOW_HOW = (
    f"create its venv: python3 -m venv .venv-mlflow && .venv-mlflow/bin/pip install mlflow=={MLFLOW_VERSION} "
    "(or point MLMON_TEST_MLFLOW at an `mlflow` executable)"
)
SEED = Path(__file__).with_name("mlflow_seed.py")


@dataclass(frozen=True)
class MlflowServer:
    url: str
    python: Path

    def seed(self, commands: list[dict[str, Any]]) -> list[Any]:
        """Run seeding commands (see mlflow_seed.py) with the MLflow client of the server's venv."""
        done = subprocess.run(
            [str(self.python), str(SEED), self.url],
            input=json.dumps(commands),
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "MLFLOW_ENABLE_ASYNC_LOGGING": "false", "GIT_PYTHON_REFRESH": "quiet"},
        )
        if done.returncode != 0:
            raise AssertionError(f"seeding MLflow failed: {done.stderr[-2000:]}")
        result: list[Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


def mlflow_executable() -> Path:
    configured = os.environ.get("MLMON_TEST_MLFLOW")
    path = Path(configured) if configured else REPO / ".venv-mlflow" / "bin" / "mlflow"
    if not path.exists():
        missing(f"the MLflow server ({path})", MLFLOW_HOW)
    return path


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """`mlflow server` on 127.0.0.1 with a SQLite backend, one worker and no job runner."""
    binary = mlflow_executable()
    workdir = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(binary), "server", "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
         "--default-artifact-root", str(workdir / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "-w", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        start_new_session=True,  # its own process group: the workers go down with it
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is None and httpx.get(f"{url}/health", timeout=2).text == "OK", 120,
                   interval=0.5, what="the MLflow server to answer /health")  # fmt: skip
        yield MlflowServer(url, binary.parent / "python")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


EVIDENTLY_VERSION = "0.7.23"
EVIDENTLY_HOW = (
    "create its venv: python3 -m venv .venv-evidently && .venv-evidently/bin/pip install "
    f"evidently=={EVIDENTLY_VERSION} 'pandas<3' (or point MLMON_TEST_EVIDENTLY_PYTHON at a Python with it)"
)


@pytest.fixture(scope="session")
def evidently_python() -> Path:
    """The interpreter of Evidently's own venv (its pins would fight mlmon's)."""
    configured = os.environ.get("MLMON_TEST_EVIDENTLY_PYTHON")
    path = Path(configured) if configured else REPO / ".venv-evidently" / "bin" / "python"
    if not path.exists():
        missing(f"Evidently {EVIDENTLY_VERSION} ({path})", EVIDENTLY_HOW)
    return path
