"""The demo fleet as `make run` serves it: `mlmon demo` in a subprocess, on a free port, in a temp
data directory. Reads go through the real HTTP API."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.peers import free_port, mlmon_command, stop_process, wait_http, wait_until

SHOWS_WITHIN = 60.0
"""Every family must show real behaviour within a minute of start-up (issue 15)."""


@dataclass
class Demo:
    url: str
    data: Path
    log: Path

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=20)
        response.raise_for_status()
        return response.json()

    def wait_for(self, what: str, check: Callable[[], bool]) -> None:
        try:
            wait_until(check, SHOWS_WITHIN, interval=1.0, what=what)
        except AssertionError:
            raise AssertionError(
                f"{what}: not within {SHOWS_WITHIN:.0f}s; log:\n{self.log.read_text()[-4000:]}"
            ) from None


@contextmanager
def running_demo(tmp: Path) -> Iterator[Demo]:
    listen = f"127.0.0.1:{free_port()}"
    data = tmp / "demo-data"
    log = tmp / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            mlmon_command("demo", "--data-dir", str(data), "--listen", listen),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
        try:
            wait_http(f"http://{listen}/healthz", timeout=60)
            yield Demo(f"http://{listen}", data, log)
        finally:
            stop_process(proc)
