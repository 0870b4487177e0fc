"""What every benchmark needs: a running `mlmon serve`, tokens, fresh PostgreSQL databases, figures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mlmon_env(database_url: str, config: Path) -> dict[str, str]:
    return {**os.environ, "MLMON_DATABASE_URL": database_url, "MLMON_CONFIG": str(config), "MLMON_LOG_LEVEL": "warning"}


def mlmon(*args: str, database_url: str, config: Path) -> str:
    """Run an `mlmon` command; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env=mlmon_env(database_url, config),
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def admin_token(database_url: str, config: Path) -> str:
    """A fresh admin token (the schema must exist: after `mlmon migrate` or once `serve` is ready)."""
    return mlmon(
        "token",
        "create",
        "--role",
        "admin",
        "--name",
        f"bench-{uuid.uuid4().hex[:8]}",
        database_url=database_url,
        config=config,
    )


@contextmanager
def mlmon_serve(database_url: str, config: Path, log: Path) -> Iterator[str]:
    """A running `mlmon serve` on a free port; yields its base URL once /readyz answers 200."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "serve", "--listen", f"127.0.0.1:{port}"],
            env=mlmon_env(database_url, config),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlmon serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlmon serve not ready after 60s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextmanager
def postgres_databases(admin_url: str, count: int, prefix: str = "mlmon_bench") -> Iterator[list[str]]:
    """`count` fresh databases on the server of `admin_url`, dropped afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = [f"{prefix}_{uuid.uuid4().hex[:10]}" for _ in range(count)]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield [make_url(admin_url).set(database=n).render_as_string(hide_password=False) for n in names]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation), as latency figures are usually reported."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1) -> None:
    """A plain-text table: the first `text_columns` columns left-aligned, the numbers right."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    for n, row in enumerate([header, *rows]):
        cells = zip(row, widths, strict=False)
        print("  ".join(c.ljust(w) if i < text_columns else c.rjust(w) for i, (c, w) in enumerate(cells)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def _reference_work() -> float:
    """Dict building, float arithmetic and a keyed sort: the kind of work the service does per row."""
    values = {f"k{i}": i * 0.5 for i in range(200_000)}
    ordered = sorted(values.items(), key=lambda kv: -kv[1])
    return ordered[0][1] + sum(values.values())


REFERENCE_REPEAT = 5


def machine_speed(repeat: int = REFERENCE_REPEAT) -> float:
    """Seconds of a fixed pure-Python workload, best of `repeat`.

    The goals stated in seconds were set on a 2-core machine whose speed drifts from day to day
    (shared hosts): printing this beside the figures tells two runs' machines apart, so an absolute
    figure can be read against the speed it was measured at."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        _reference_work()
        best = min(best, time.perf_counter() - started)
    return best


def print_machine_speed(label: str = "machine") -> None:
    seconds = machine_speed()
    where = f"best of {REFERENCE_REPEAT}; bench/support.py"
    print(f"{label}: reference pure-Python workload {seconds * 1000:.0f} ms ({where})")
