"""Git remotes and registry images as configured sources, run by the real runner: a repository
served by `git daemon` on 127.0.0.1 (re-read only when the ref's commit changes, findings' origins
carry the commit), an image in a real docker-registry, and sources that fail (unclonable
repository, unknown ref, unknown image, bad layer) without storing anything or disturbing the rest."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collectors.http import HttpFactory
from monitor.core.clock import FrozenClock
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.stack.inventory.changes import from_checkpoint
from tests.conftest import RuntimeFactory
from tests.stack.images import MEDIA, Registry, dist, write_layout
from tests.stack.test_image import cuda_torch_layers
from tests.support.peers import free_port, require_binary, stop_process, wait_until

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def git(*args: str, cwd: Path | None = None) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(cwd or Path.cwd()), "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@dataclass
class GitServer:
    root: Path
    work: Path
    port: int

    def url(self, name: str = "ml.git") -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        git("push", "-q", str(self.root / "ml.git"), "HEAD:refs/heads/main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    binary = require_binary("git", "apt-get install git")
    root, work = tmp_path / "served", tmp_path / "work"
    root.mkdir()
    git("init", "-q", "-b", "main", str(work), cwd=tmp_path)
    git("init", "-q", "--bare", "-b", "main", str(root / "ml.git"), cwd=tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [binary, "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}", f"--base-path={root}",
         "--export-all", "--informative-errors", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = GitServer(root, work, port)
    server.commit(
        {"services/api/requirements.txt": "torch==2.5.1\nnumpy==1.26.4\n", "docs/requirements.txt": "sphinx==1.0\n"},
        "first",
    )

    def answers() -> bool:
        return subprocess.run(["git", "ls-remote", server.url()], capture_output=True, timeout=10).returncode == 0

    wait_until(answers, 20, what="git daemon")
    try:
        yield server
    finally:
        stop_process(proc)


@dataclass
class World:
    runtime: Runtime
    runner: SourceRunner
    clock: FrozenClock
    data: Path

    def run(self) -> dict[str, Any]:
        return {plan.source: self.runner.run(plan) for plan in self.runtime.plans}

    def checkpoint(self, source: str) -> dict[str, Any] | None:
        status = next(s for s in self.runtime.store.sources.statuses("svc") if s.source == source)
        return dict(status.checkpoint) if status.checkpoint else None


@pytest.fixture
def world(tmp_path: Path, make_runtime: RuntimeFactory, git_server: GitServer) -> Iterator[World]:
    with Registry(tmp_path / "registry") as registry:
        good = registry.push(write_layout(tmp_path / "good", cuda_torch_layers()), "svc", "good")
        broken = write_layout(tmp_path / "bad", [dist("six", "1.16.0")],
                              raw_layers=[(b"not a layer at all\n" * 40, MEDIA["gzip"])])  # fmt: skip
        bad = registry.upload(broken, "svc", "bad")
        config = f"""
projects:
  - id: svc
    owners: [{{name: Ada, email: ada@example.com}}]
    sources:
      - {{name: code, kind: repo, interval: 1h, params: {{url: "{git_server.url()}", ref: main, paths: [services/api]}}}}
      - {{name: gone, kind: repo, interval: 1h, params: {{url: "{git_server.url("missing.git")}", ref: main}}}}
      - {{name: no-branch, kind: repo, interval: 1h, params: {{url: "{git_server.url()}", ref: release}}}}
      - {{name: image, kind: image, interval: 1h, params: {{ref: "{good}"}}}}
      - {{name: no-image, kind: image, interval: 1h, params: {{ref: "{registry.host}/svc:missing"}}}}
      - {{name: bad-layer, kind: image, interval: 1h, params: {{ref: "{bad}"}}}}
"""
        clock = FrozenClock(T0)
        runtime = make_runtime(config, clock=clock)
        data = tmp_path / "data"
        runner = SourceRunner(runtime.store, clock, HttpFactory(timeout=30), env={"MLMON_DATA_DIR": str(data)})
        yield World(runtime, runner, clock, data)


def test_remote_sources_and_their_failures(world: World, git_server: GitServer) -> None:
    records = world.run()
    assert records["code"].ok and records["image"].ok, (records["code"].error, records["image"].error)
    failures = {name: records[name].error or "" for name in ("gone", "no-branch", "no-image", "bad-layer")}
    assert not any(records[name].ok for name in failures)
    assert "resolve ref main" in failures["gone"] and "missing.git" in failures["gone"]
    assert "resolve ref release" in failures["no-branch"]
    assert "resolve manifest" in failures["no-image"] and "svc:missing" in failures["no-image"]
    assert (
        "read layer sha256:" in failures["bad-layer"] and "expected a gzip, zstd or tar layer" in failures["bad-layer"]
    )
    for name in failures:  # nothing stored from a failed run
        assert world.checkpoint(name) is None

    first_commit = git("rev-parse", "HEAD", cwd=git_server.work)
    code = world.checkpoint("code")
    assert code is not None and code["commit"] == first_commit
    inventory, read_at = from_checkpoint(code)  # type: ignore[misc]
    assert {p.name: p.version for p in inventory.packages} == {"torch": "2.5.1", "numpy": "1.26.4"}  # docs/ skipped
    torch = next(p for p in inventory.packages if p.name == "torch")
    assert torch.origin == f"{git_server.url()}@{first_commit}!/services/api/requirements.txt" and torch.line == 1
    image = world.checkpoint("image")
    assert image is not None and from_checkpoint(image)[0].torch.accelerator == "12.4"  # type: ignore[index,union-attr]

    # the ref did not move: nothing is fetched or read again (the clone can even be gone)
    world.clock.advance(timedelta(hours=1))
    import shutil

    shutil.rmtree(world.data / "repos")
    again = world.run()
    assert again["code"].ok
    assert world.checkpoint("code") == code

    # a new commit is read
    second = git_server.commit({"services/api/requirements.txt": "torch==2.6.0\nnumpy==1.26.4\n"}, "upgrade")
    world.clock.advance(timedelta(hours=1))
    assert world.run()["code"].ok
    updated = world.checkpoint("code")
    assert updated is not None and updated["commit"] == second
    assert {p.name: p.version for p in from_checkpoint(updated)[0].packages}["torch"] == "2.6.0"  # type: ignore[index]
    events = world.runtime.store.events.events(project="svc", kinds=["version_change"])
    assert [e.describe() for e in events] == ["torch 2.5.1 -> 2.6.0"]
