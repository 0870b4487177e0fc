"""Git repositories as inventory sources: one ref, fetched shallowly with the `git` binary.

`git ls-remote` tells the ref's commit; only when it differs from the last one read is the commit
fetched (`--depth=1`, no tags) into a repository under mlmon's data directory and checked out
there, and its lock files, SBOMs and environments read as a directory. Credentials come from the
environment and reach git through its environment (an `http.extraHeader` bearer token set with
`GIT_CONFIG_*`, or a username and password answered by an askpass program that reads them from
variables), never through its arguments or the URL, and are scrubbed from any message. Prompts are
off, so a missing credential fails at once.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from monitor.stack.inventory.model import Inventory, InventoryError, Package, merge
from monitor.stack.inventory.reader import lock_format, read_lockfile, read_path, read_repo
from monitor.stack.inventory.target import Target

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_ASKPASS = """#!{python}
import os, sys
prompt = sys.argv[1].lower() if len(sys.argv) > 1 else ""
print(os.environ.get("MLMON_GIT_USERNAME" if prompt.startswith("username") else "MLMON_GIT_PASSWORD", ""))
"""
GIT_TIMEOUT = 300.0


class GitError(Exception):
    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(f"{step}: {message}")


@dataclass(frozen=True)
class GitAuth:
    token: str | None = None
    username: str | None = None
    password: str | None = None

    def secrets(self) -> list[str]:
        return [s for s in (self.token, self.password) if s]


@dataclass(frozen=True)
class Remote:
    url: str
    ref: str
    auth: GitAuth = GitAuth()

    @property
    def full_ref(self) -> str:
        if _COMMIT.match(self.ref) or self.ref.startswith("refs/"):
            return self.ref
        return f"refs/heads/{self.ref}"


def _environment(remote: Remote, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "MLMON_GIT_"))}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "", "LC_ALL": "C"})
    if remote.auth.token:
        env.update(
            {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Bearer {remote.auth.token}",
            }
        )
    if remote.auth.username is not None and remote.auth.password is not None:
        askpass = data_dir / "askpass.py"
        if not askpass.exists():
            askpass.write_text(_ASKPASS.format(python=sys.executable))
            askpass.chmod(0o700)
        env.update(
            {"GIT_ASKPASS": str(askpass), "MLMON_GIT_USERNAME": remote.auth.username,
             "MLMON_GIT_PASSWORD": remote.auth.password}
        )  # fmt: skip
    return env


def _scrub(text: str, auth: GitAuth) -> str:
    for secret in auth.secrets():
        text = text.replace(secret, "***")
    return re.sub(r"://[^/@\s]+@", "://***@", text).strip()


def _git(args: Sequence[str], remote: Remote, data_dir: Path, step: str, cwd: Path | None = None) -> str:
    command = ["git", "-c", "credential.helper=", "-c", "protocol.version=2", *args]
    try:
        done = subprocess.run(
            command, cwd=cwd, env=_environment(remote, data_dir), capture_output=True, text=True,
            timeout=GIT_TIMEOUT, check=False,
        )  # fmt: skip
    except FileNotFoundError:
        raise GitError(step, "the git binary is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(step, f"git did not finish within {GIT_TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()][-3:]
        raise GitError(step, _scrub("; ".join(lines) or f"git exited with {done.returncode}", remote.auth))
    return done.stdout


def resolve(remote: Remote, data_dir: Path) -> str:
    """The commit the ref points at now."""
    if _COMMIT.match(remote.ref):
        return remote.ref
    data_dir.mkdir(parents=True, exist_ok=True)
    out = _git(["ls-remote", "--exit-code", remote.url, remote.full_ref], remote, data_dir, f"resolve ref {remote.ref}")
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name == remote.full_ref and _COMMIT.match(sha):
            return sha
    raise GitError(f"resolve ref {remote.ref}", f"{remote.full_ref} was not found on the remote")


def clone_dir(data_dir: Path, url: str) -> Path:
    return data_dir / "repos" / hashlib.sha256(url.encode()).hexdigest()[:20]


def checkout(remote: Remote, commit: str, data_dir: Path) -> Path:
    """A working tree of exactly `commit`, fetched with depth 1."""
    target = clone_dir(data_dir, remote.url)
    target.mkdir(parents=True, exist_ok=True)
    if not (target / ".git").is_dir():
        _git(["init", "-q", str(target)], remote, data_dir, "clone")
    want = commit if _COMMIT.match(remote.ref) else remote.full_ref
    _git(["fetch", "-q", "--depth=1", "--no-tags", remote.url, want], remote, data_dir, "fetch", cwd=target)
    fetched = _git(["rev-parse", "FETCH_HEAD"], remote, data_dir, "fetch", cwd=target).strip()
    if fetched != commit:
        commit = fetched  # the ref moved between ls-remote and fetch: read what was fetched
    _git(["checkout", "-q", "--force", "--detach", commit], remote, data_dir, "checkout", cwd=target)
    _git(["clean", "-q", "-fdx"], remote, data_dir, "checkout", cwd=target)
    return target


def read_remote(
    remote: Remote,
    commit: str,
    data_dir: Path,
    *,
    paths: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_depth: int = 6,
    target: Target | None = None,
) -> Inventory:
    """The inventory of `paths` (default: the whole tree) at `commit`; origins carry the commit."""
    location = f"{remote.url}@{commit}"
    try:
        tree = checkout(remote, commit, data_dir)
    except GitError as exc:
        raise InventoryError(remote.url, str(exc)) from None
    parts: list[Inventory] = []
    for relative in paths or ["."]:
        path = (tree / relative).resolve()
        if tree.resolve() not in (path, *path.parents):
            raise InventoryError(location, f"paths: {relative!r} leaves the repository")
        if not path.exists():
            raise InventoryError(location, f"read: {relative} does not exist at commit {commit}")
        if path.is_dir():
            parts.append(read_repo(path, max_depth=max_depth, exclude=exclude, environments=False, target=target))
        else:
            parts.append(read_lockfile(path, target=target) if lock_format(path) else read_path(path))
    inventory = merge("repo", location, parts, notes=[f"{location}: commit {commit} of {remote.ref}"])
    return _relocated(inventory, tree.resolve(), location)


def _relocated(inventory: Inventory, tree: Path, location: str) -> Inventory:
    prefix = str(tree)

    def origin(value: str) -> str:
        return f"{location}!/{value[len(prefix) :].lstrip('/')}" if value.startswith(prefix) else value

    packages = tuple(
        Package(p.name, p.version, origin(p.origin), p.line, p.ecosystem, p.scope, p.index, p.build, p.native_name)
        for p in inventory.packages
    )
    notes = tuple(n.replace(prefix, location) for n in inventory.notes)
    return replace(
        inventory, packages=packages, files=tuple(origin(f) for f in inventory.files), notes=notes, _index={}
    )


def auth_from_env(
    env: Mapping[str, str], token_env: str | None, username_env: str | None, password_env: str | None
) -> GitAuth:
    def value(name: str | None, what: str) -> str | None:
        if name is None:
            return None
        if name not in env:
            raise InventoryError(name, f"environment variable {name} ({what}) is not set")
        return env[name]

    return GitAuth(
        value(token_env, "git token"), value(username_env, "git username"), value(password_env, "git password")
    )
