"""A hostile-input corpus, generated here: alias bombs, deep nesting, huge numbers, foreign YAML
tags, truncated archives, non-UTF-8 bytes, an include of a secret file. Each goes through the
command a user would run (`check-config`, `scan`, `spend read-focus`) and through every file source
kind (`collect --once`), each in a subprocess limited to 3 GiB of address space and a timeout.
Every one must end in a clear error naming the file, never a traceback, never file contents,
with nothing stored from the failed run."""

from __future__ import annotations

import gzip
import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.peers import mlmon_command

REPO = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 3 * 1024**3
"""Address space, not resident memory: DuckDB's threads and arenas reserve far more than they
touch, and under 1 GiB a FOCUS read could fail to start a thread. An alias bomb still hits it."""
TIMEOUT = 60
"""Far above the second each case takes on an idle machine: the bound catches a hang, not slowness."""
SECRET = "DB_PASSWORD=hunter2-do-not-leak"

PROJECT = """
projects:
  - id: p
    name: P
    sources:
      - {name: s, kind: push, params: {expect: [{metric: accuracy, max_age: 1h}]}}
"""


def _alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLMON_")}
    return subprocess.run(
        mlmon_command(*args),
        cwd=REPO,
        env={**clean, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limit_memory,
    )


HARNESS = """
import json, signal, sys, traceback
from click.testing import CliRunner
from monitor.cli import main

class Hung(Exception):
    pass

def hung(*_):
    raise Hung()

signal.signal(signal.SIGALRM, hung)
out = []
for args in json.loads(sys.argv[1]):
    signal.alarm(int(sys.argv[2]))
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    signal.alarm(0)
    crash = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        crash = "Traceback: " + "".join(traceback.format_exception(result.exception))[-2000:]
    out.append({"code": result.exit_code, "said": result.output + crash})
print(json.dumps(out))
"""
"""One interpreter runs a whole batch (importing mlmon once costs seconds); each command still gets
its own alarm, and the batch its memory limit."""


def run_batch(commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    import json

    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLMON_")}
    done = subprocess.run(
        [sys.executable, "-c", HARNESS, json.dumps(commands), str(TIMEOUT)],
        cwd=REPO,
        env={**clean, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        preexec_fn=_limit_memory,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [
        subprocess.CompletedProcess(args, item["code"], item["said"], "")
        for args, item in zip(commands, json.loads(done.stdout.splitlines()[-1]), strict=True)
    ]


Maker = Callable[[Path], Path]


def _write(name: str, content: str | bytes) -> Maker:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return make


CONFIGS: dict[str, tuple[Maker, str]] = {
    "alias bomb": (_write("bomb.yaml", PROJECT + _alias_bomb()), "alias bomb"),
    "deep nesting": (_write("deep.yaml", "x: " + "[" * 5000 + "]" * 5000 + "\n"), "nested more than"),
    "python tag": (_write("tag.yaml", "x: !!python/object/apply:os.system [echo owned]\n"), "not allowed"),
    "huge integer": (_write("int.yaml", "x: " + "9" * 5000 + "\n"), "5,000 digits"),
    "huge duration": (
        _write("dur.yaml", PROJECT.replace("kind: push,", "kind: push, interval: 99999999999999999d,")),
        "at most 100y",
    ),
    "not UTF-8": (_write("latin.yaml", b"projects: []\nname: caf\xe9\n"), "UTF-8"),
    "NaN threshold": (
        _write(
            "nan.yaml",
            PROJECT + "rules:\n  - {name: r, kind: threshold, params: {metric: accuracy, op: '<', value: .nan}}\n",
        ),
        "finite number",
    ),
    "catastrophic regex": (
        _write(
            "regex.yaml",
            PROJECT + "rules:\n  - {name: r, kind: threshold, project_selector: ['team=~\"(a+)+$\"'], "
            "params: {metric: accuracy, op: '<', value: 0.5}}\n",
        ),
        "exponential",
    ),
    "empty": (_write("empty.yaml", "projects: []\n"), "no projects"),
}


def _pipfile_deep(tmp: Path) -> Path:
    return _write("deep/Pipfile.lock", '{"default": ' + "[" * 5000 + "]" * 5000 + "}")(tmp)


def _cyclonedx_deep(tmp: Path) -> Path:
    return _write("deep/sbom.cdx.json", '{"bomFormat": "CycloneDX", "x": ' + '{"a": ' * 5000 + "1" + "}" * 5001)(tmp)


def _include_secret(tmp: Path) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / ".env").write_text(SECRET + "\n")
    return _write("app/requirements.txt", "-r ../.env\ntorch==2.5.1\n")(tmp)


LOCKS: dict[str, tuple[Maker, str]] = {
    "include outside": (_include_secret, "includes must stay inside"),
    "include absolute": (_write("abs/requirements.txt", "-r /etc/passwd\n"), "includes must stay inside"),
    "Pipfile.lock deep": (_pipfile_deep, "nested too deeply"),
    "CycloneDX deep": (_cyclonedx_deep, "nested too deeply"),
    "JSON huge integer": (
        _write("int/Pipfile.lock", '{"default": {"torch": {"version": ' + "9" * 5000 + "}}}"),
        "refused",
    ),
    "uv.lock deep": (_write("uv/uv.lock", "x = " + "[" * 5000 + "]" * 5000 + "\n"), "nested too deeply"),
    "conda alias bomb": (_write("conda/environment.yml", "name: x\n" + _alias_bomb()), "alias bomb"),
    "requirements not UTF-8": (_write("latin/requirements.txt", b"torch==2.5.1 # caf\xe9\n"), "UTF-8"),
}


def _pre_scan(tmp: Path) -> Path:
    advisories = tmp / "advisories"
    advisories.mkdir(exist_ok=True)
    (advisories / "OSV-1.json").write_text(
        '{"id": "OSV-1", "modified": "2025-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "PyPI", '
        '"name": "nothing-here"}, "versions": ["1.0"]}]}'
    )
    return advisories


def _assert_clear(done: subprocess.CompletedProcess[str], file: Path, expected: str) -> None:
    said = done.stdout + done.stderr
    assert done.returncode not in (0, -9), said  # -9: killed past the memory limit
    assert "Traceback" not in said, said
    assert str(file.name) in said, said
    assert expected in said, said
    assert SECRET not in said and "root:x:0:0" not in said, said
    assert len(said) < 20_000, len(said)


def test_the_corpus_ends_in_clear_errors_within_bounds(tmp_path: Path) -> None:
    advisories = _pre_scan(tmp_path)
    jobs: list[tuple[str, Path, str, list[str]]] = []
    for label, (make, expected) in CONFIGS.items():
        path = make(tmp_path / "configs")
        jobs.append((f"check-config {label}", path, expected, ["check-config", str(path)]))
    for label, (make, expected) in LOCKS.items():
        path = make(tmp_path / "locks")
        args = ["scan", str(path), "--advisories", str(advisories), "--index", "none"]
        jobs.append((f"scan {label}", path, expected, args))
    truncated = tmp_path / "focus" / "export.csv.gz"
    truncated.parent.mkdir()
    whole = gzip.compress(b"BilledCost,ChargePeriodStart\n" + b"1,2025-01-01\n" * 10)
    truncated.write_bytes(whole[:20])
    jobs.append(("read-focus truncated", truncated, "truncated", ["spend", "read-focus", str(truncated)]))
    latin = tmp_path / "focus" / "latin.csv"
    latin.write_bytes(b"BilledCost,Caf\xe9\n1,2\n")
    jobs.append(("read-focus not UTF-8", latin, "decode", ["spend", "read-focus", str(latin)]))

    for (label, path, expected, _args), done in zip(jobs, run_batch([job[3] for job in jobs]), strict=True):
        assert done.stdout, label
        _assert_clear(done, path, expected)


def test_unparseable_versions_are_dropped_and_nothing_checkable_exits_3(tmp_path: Path) -> None:
    advisories = _pre_scan(tmp_path)
    lock = _write("bad/requirements.txt", "torch===nightly\nnumpy===also-not\n")(tmp_path)
    done = run("scan", str(lock), "--advisories", str(advisories), "--index", "none")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "nothing to check" in done.stderr
    assert f"{lock}:1: torch 'nightly' is not a valid version; not checked" in done.stderr


def test_every_file_source_kind_fails_cleanly_and_stores_nothing(tmp_path: Path) -> None:
    files = {
        "lock": _include_secret(tmp_path / "l"),
        "lockbomb": _write("c/environment.yml", "name: x\n" + _alias_bomb())(tmp_path),
        "sbom": _cyclonedx_deep(tmp_path / "s"),
        "repo": _write("r/requirements.txt", "-r /etc/passwd\n")(tmp_path),
        "env": _write("e/lib/python3.11/site-packages/x.dist-info/METADATA", b"\xff\xfe\x00")(tmp_path),
    }
    truncated = tmp_path / "f" / "export.csv.gz"
    truncated.parent.mkdir()
    truncated.write_bytes(gzip.compress(b"BilledCost,ChargePeriodStart\n" + b"1,2025-01-01\n" * 10)[:20])
    config = tmp_path / "mlmon.yaml"
    config.write_text(
        f"""
projects:
  - id: p
    name: P
    sources:
      - {{name: lock, kind: lockfile, params: {{path: "{files["lock"]}"}}}}
      - {{name: lockbomb, kind: lockfile, params: {{path: "{files["lockbomb"]}"}}}}
      - {{name: sbom, kind: sbom, params: {{path: "{files["sbom"]}"}}}}
      - {{name: repo, kind: repo, params: {{path: "{files["repo"].parent}"}}}}
      - {{name: env, kind: python_env, params: {{path: "{tmp_path / "e"}"}}}}
      - name: focus
        kind: focus
        params: {{path: "{truncated}", attribution: [{{tag: ml-project}}]}}
stack:
  advisories: {{path: "{_pre_scan(tmp_path)}"}}
"""
    )
    database = tmp_path / "db" / "mlmon.db"
    done = run("collect", "--once", env={"MLMON_CONFIG": str(config), "MLMON_DATABASE_URL": f"sqlite:///{database}"})
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "Traceback" not in said and SECRET not in said and "root:x:0:0" not in said, said
    with sqlite3.connect(database) as conn:
        runs = dict(conn.execute("SELECT source, error FROM source_runs WHERE outcome != 'ok'").fetchall())
        samples = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
    assert samples == 0
    expected = {
        "lock": "includes must stay inside",
        "lockbomb": "alias bomb",
        "sbom": "nested too deeply",
        "repo": "includes must stay inside",
        "focus": "truncated",
    }
    for source, words in expected.items():
        assert source in runs, (source, said)
        assert words in runs[source], (source, runs[source])
        assert len(runs[source]) <= 4_100
    for error in runs.values():
        assert SECRET not in error and "root:x:0:0" not in error


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="RLIMIT_AS is how the corpus bounds memory; Linux only")
