"""A real Alertmanager for side-by-side tests, and a webhook sink that notes when each request came.

with running_alertmanager(tmp_path, config_yaml) as am:
    am.post_alerts([{"labels": {...}, "startsAt": ...}])
    am.alerts()                                  # GET /api/v2/alerts
    am.post_silence({...})                       # -> the httpx response
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.support.peers import free_port, require_binary, stop_process, wait_http


def alertmanager_binary() -> str:
    # Debian and Ubuntu install it as prometheus-alertmanager; upstream tarballs as alertmanager
    return shutil.which("alertmanager") or require_binary(
        "prometheus-alertmanager", "install the prometheus-alertmanager package (or put alertmanager on PATH)"
    )


def amtool_binary() -> str:
    return require_binary("amtool", "install the prometheus-alertmanager package (it ships amtool)")


@dataclass
class Alertmanager:
    url: str
    log: Path

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5).raise_for_status()

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=5)
        response.raise_for_status()
        return list(response.json())

    def post_silence(self, silence: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.url}/api/v2/silences", json=silence, timeout=5)

    def silence(self, silence_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/api/v2/silence/{silence_id}", timeout=5)
        response.raise_for_status()
        return dict(response.json())


@contextmanager
def running_alertmanager(tmp_path: Path, config: str, external_url: str | None = None) -> Iterator[Alertmanager]:
    binary = alertmanager_binary()
    directory = tmp_path / f"am-{free_port()}"
    directory.mkdir()
    (directory / "alertmanager.yml").write_text(config)
    port = free_port()
    log = directory / "alertmanager.log"
    args = [
        binary,
        f"--config.file={directory / 'alertmanager.yml'}",
        f"--storage.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip: a single instance
        "--log.level=debug",
    ]
    if external_url:
        args.append(f"--web.external-url={external_url}")
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/-/ready")
        yield Alertmanager(url, log)
    finally:
        stop_process(proc)


@dataclass(frozen=True)
class Arrival:
    at: float
    """time.monotonic() when the request arrived"""
    body: Any


class TimedSink:
    """A webhook receiver (a real local HTTP server) that records each JSON body with its arrival time."""

    def __init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._arrivals: list[Arrival] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._lock:
                    sink._arrivals.append(Arrival(at, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def arrivals(self) -> list[Arrival]:
        with self._lock:
            return list(self._arrivals)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
