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

from monitor.core.clock import FrozenClock
from monitor.http import HttpFactory
from monitor.runner import SourceRunner
from monitor.runtime import Runtime
from monitor.stack.inventory.changes import from_checkpoint
from tests.conftest import RuntimeFactory
from tests.monitor.stack.images import MEDIA, Registry, dist, write_layout
from tests.monitor.stack.test_image import cuda_torch_layers
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


class GitHttp:
    """Smart HTTP in front of `git http-backend` (CGI), refusing requests without the expected
    Basic credentials or bearer token, on 127.0.0.1."""

    def __init__(self, root: Path, user: str, password: str, token: str) -> None:
        import base64
        import http.server
        import threading

        backend = Path(subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout.strip())
        accepted = {f"Basic {base64.b64encode(f'{user}:{password}'.encode()).decode()}", f"Bearer {token}"}
        self.seen_auth: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                auth = self.headers.get("Authorization", "")
                outer.seen_auth.append(auth.split(" ")[0])
                if auth not in accepted:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {"GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                       "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_USER": user,
                       "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""), "PATH": "/usr/bin:/bin"}  # fmt: skip
                done = subprocess.run([str(backend / "git-http-backend")], input=body, env=env, capture_output=True)
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve
            do_POST = _serve

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_git_credentials_come_from_the_environment_and_are_never_shown(
    tmp_path: Path, make_runtime: RuntimeFactory, git_server: GitServer
) -> None:
    server = GitHttp(git_server.root, "ci", "s3cret-pass", "t0ken-abc")
    try:
        config = f"""
projects:
  - id: svc
    owners: [{{name: Ada, email: ada@example.com}}]
    sources:
      - {{name: anonymous, kind: repo, interval: 1h, params: {{url: "{server.url("ml.git")}", paths: [services/api]}}}}
      - {{name: wrong, kind: repo, interval: 1h, params: {{url: "{server.url("ml.git")}", username_env: GIT_USER,
          password_env: WRONG_PASSWORD}}}}
      - {{name: basic, kind: repo, interval: 1h, params: {{url: "{server.url("ml.git")}", username_env: GIT_USER,
          password_env: GIT_PASSWORD, paths: [services/api]}}}}
      - {{name: token, kind: repo, interval: 1h, params: {{url: "{server.url("ml.git")}", token_env: GIT_TOKEN,
          paths: [services/api/requirements.txt]}}}}
"""
        clock = FrozenClock(T0)
        runtime = make_runtime(config, clock=clock)
        env = {"MLMON_DATA_DIR": str(tmp_path / "data"), "GIT_USER": "ci", "GIT_PASSWORD": "s3cret-pass",
               "WRONG_PASSWORD": "not-it-123", "GIT_TOKEN": "t0ken-abc"}  # fmt: skip
        runner = SourceRunner(runtime.store, clock, HttpFactory(timeout=30), env=env)
        records = {plan.source: runner.run(plan) for plan in runtime.plans}
        assert records["basic"].ok and records["token"].ok, (records["basic"].error, records["token"].error)
        for name in ("anonymous", "wrong"):
            error = records[name].error or ""
            assert not records[name].ok and "resolve ref main" in error
            assert "s3cret-pass" not in error and "not-it-123" not in error
        assert {"Basic", "Bearer"} <= set(server.seen_auth)
        statuses = {s.source: s for s in runtime.store.sources.statuses("svc")}
        stored = json_text(statuses)
        assert "s3cret-pass" not in stored and "t0ken-abc" not in stored
        inventory = from_checkpoint(statuses["token"].checkpoint)[0]  # type: ignore[index]
        assert {p.name for p in inventory.packages} == {"torch", "numpy"}
    finally:
        server.close()


def json_text(statuses: dict[str, Any]) -> str:
    import json

    return json.dumps({k: [v.last_error, v.checkpoint] for k, v in statuses.items()}, default=str)


@pytest.mark.parametrize(
    ("kind", "params", "fragment"),
    [
        ("repo", {}, "either `path`"),
        ("repo", {"path": "/srv/x", "url": "git://h/x.git"}, "either `path`"),
        ("repo", {"url": "https://ci:hunter2@git.example.com/x.git"}, "not in the URL"),
        ("image", {}, "exactly one of"),
        ("image", {"ref": "r.example.com/x:1", "oci": "/srv/layout"}, "exactly one of"),
        ("image", {"ref": "r.example.com/x:1", "platform": "amd64"}, "platform"),
    ],
)
def test_remote_source_params_are_checked(kind: str, params: dict[str, Any], fragment: str) -> None:
    from pydantic import ValidationError

    from collectors import REGISTRY

    with pytest.raises(ValidationError) as refused:
        REGISTRY[kind].create(params)
    assert fragment in str(refused.value)
    assert "hunter2" not in str(refused.value).split("input_value")[0]


def test_an_ssh_login_name_is_not_a_credential() -> None:
    from collectors import REGISTRY

    assert REGISTRY["repo"].create({"url": "ssh://git@git.example.com/ml.git", "ref": "main"}) is not None
