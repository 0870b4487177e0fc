"""Real external components for tests, and the rule for when one is missing.

Locally, a test whose component is missing is skipped with a reason that says how to enable it;
with `CI` set, it fails instead, because CI installs everything.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def missing(what: str, how: str) -> NoReturn:
    """Skip locally (saying how to enable), fail under CI."""
    message = f"{what} is not available; {how}"
    if in_ci():
        pytest.fail(f"CI: {message}", pytrace=False)
    pytest.skip(message)


def require_binary(name: str, how: str) -> str:
    found = shutil.which(name)
    if not found:
        missing(f"the {name} binary", how)
    return found


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        missing(f"shared data {path}", "check out the project beside ../shared")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")


def wait_http(url: str, timeout: float = 30.0) -> None:
    def ok() -> bool:
        return httpx.get(url, timeout=2).status_code < 500

    wait_until(ok, timeout, what=url)


def mlmon_command(*args: str) -> list[str]:
    """Run the installed CLI with the interpreter running the tests."""
    return [sys.executable, "-m", "monitor", *args]


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
