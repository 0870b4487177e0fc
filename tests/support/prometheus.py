"""A real Prometheus (Debian package `prometheus`) on 127.0.0.1, scraping targets the test serves.

with LocalHttpServer() as exporter, run_prometheus(tmp_path, [exporter.address]) as prom:
    prom.wait_for('up{job="test"}')
    url = prom.url                      # http://127.0.0.1:<port>
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.peers import free_port, require_binary, stop_process, wait_until


@dataclass(frozen=True)
class Prometheus:
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until `expr` returns at least one series (e.g. after the first scrapes)."""
        found: list[dict[str, Any]] = []

        def ready() -> bool:
            found[:] = self.query(expr)
            return bool(found)

        wait_until(ready, timeout, interval=0.25, what=f"Prometheus to return {expr}")
        return found


@contextmanager
def run_prometheus(
    workdir: Path,
    targets: Sequence[str],
    job: str = "test",
    scrape_interval: str = "1s",
    metrics_path: str = "/metrics",
) -> Iterator[Prometheus]:
    """Start Prometheus scraping `targets` ("127.0.0.1:port") every `scrape_interval`."""
    binary = require_binary("prometheus", "install the Debian package prometheus (apt-get install prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    quoted = ", ".join(f"'{t}'" for t in targets)
    config.write_text(
        f"global: {{scrape_interval: {scrape_interval}, evaluation_interval: {scrape_interval}}}\n"
        f"scrape_configs:\n  - job_name: {job}\n    metrics_path: {metrics_path}\n"
        f"    static_configs: [{{targets: [{quoted}]}}]\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "prometheus.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, 30, what="Prometheus ready")
        yield Prometheus(url)
    finally:
        stop_process(proc)
