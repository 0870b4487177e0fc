"""Inventory source kinds: `python_env`, `lockfile`, `sbom`, `repo` (a directory or a git remote), `image`.

Each run reads the target (nothing from it is imported or run), hands the inventory over in the
source's checkpoint (stored atomically with the run; the stack family copies it into its tables),
reports version changes as events ("torch 2.14.1 -> 2.15.0") and the package count as a reading.
A target that cannot be read fails the run with the file and position; the previous inventory
stays in force.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from collectors.base import (
    CollectContext,
    CollectResult,
    EventDraft,
    Params,
    Reading,
    SourceError,
    SourceKind,
    env_value,
)
from monitor.stack.inventory.changes import changes, from_checkpoint, to_checkpoint
from monitor.stack.inventory.environment import read_environment
from monitor.stack.inventory.git_remote import GitError, Remote, auth_from_env, read_remote, resolve
from monitor.stack.inventory.image.read import read_docker_archive, read_oci_layout, read_registry_image
from monitor.stack.inventory.image.registry import Credentials
from monitor.stack.inventory.model import Inventory, InventoryError
from monitor.stack.inventory.reader import LockFormat, SbomFormat, read_lockfile, read_repo, read_sbom
from monitor.stack.inventory.target import Platform, Target

EVENT_KIND = "version_change"


class _PathParams(Params):
    path: str = Field(min_length=1, description="a local path (~ is expanded)")

    @field_validator("path")
    @classmethod
    def _strip(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("path must not be empty")
        return value.strip()


class PythonEnvParams(_PathParams):
    """A virtualenv root, a conda environment root or a site-packages directory."""


class EnvironmentParams(Params):
    """Where the project installs the lock file, as PEP 508 marker values: entries whose markers do
    not hold there (another platform's wheels, another Python's pins) are left out."""

    python_version: str = Field(pattern=r"^\d+\.\d+$", description='major.minor, e.g. "3.11"')
    python_full_version: str | None = Field(default=None, pattern=r"^\d+\.\d+\.\d+$")
    sys_platform: Platform = "linux"
    platform_machine: str = Field(default="x86_64", pattern=r"^[A-Za-z0-9_]+$", description="x86_64, aarch64, arm64")
    implementation_name: str = Field(default="cpython", pattern=r"^[a-z]+$")

    @model_validator(mode="after")
    def _same_python(self) -> EnvironmentParams:
        full = self.python_full_version
        if full is not None and not full.startswith(self.python_version + "."):
            raise ValueError(f"python_full_version {full!r} is not a {self.python_version} release")
        return self

    def target(self) -> Target:
        return Target.declare(**self.model_dump())


class LockfileParams(_PathParams):
    format: LockFormat = "auto"
    include_dev: bool = Field(default=True, description="keep packages the file marks as development-only")
    environment: EnvironmentParams | None = Field(
        default=None, description="the target environment; without it every platform's pins are checked"
    )


class SbomParams(_PathParams):
    format: SbomFormat = "auto"


class RepoParams(Params):
    """A local directory (`path`), or a git remote (`url`, `ref`, `paths`) fetched shallowly into the
    data directory (`MLMON_DATA_DIR`) and re-read only when the ref's commit changes."""

    path: str | None = Field(default=None, description="a local directory (~ is expanded)")
    url: str | None = Field(default=None, description="a git remote: https://, ssh://, git:// or a local path")
    ref: str = Field(default="main", min_length=1, description="branch, refs/... or a 40-hex commit")
    paths: list[str] = Field(default_factory=list, description="directories or files to read (default: all)")
    token_env: str | None = Field(default=None, description="variable holding a bearer token (http.extraHeader)")
    username_env: str | None = Field(default=None, description="variable holding the git username")
    password_env: str | None = Field(default=None, description="variable holding the git password or token")
    max_depth: int = Field(default=6, ge=0, le=32)
    exclude: list[str] = Field(default_factory=list, description="glob patterns of paths to skip")
    environments: bool = Field(default=True, description="also read virtualenvs / conda envs found inside")
    environment: EnvironmentParams | None = Field(
        default=None, description="the target environment of the lock files found; see `lockfile`"
    )

    @model_validator(mode="after")
    def _one_place(self) -> RepoParams:
        if (self.path is None) == (self.url is None):
            raise ValueError("set either `path` (a local directory) or `url` (a git remote)")
        if self.path is not None and not self.path.strip():
            raise ValueError("path must not be empty")
        if self.url is not None and _credentials_in_url(self.url):
            raise ValueError("put credentials in the environment (token_env, username_env), not in the URL")
        return self


def _credentials_in_url(url: str) -> bool:
    """An HTTP(S) URL with any user info, or any URL with `user:password@`; `ssh://git@host` is a
    login name, not a secret."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return False
    userinfo, at, _ = rest.split("/", 1)[0].rpartition("@")
    if not at:
        return False
    return scheme.lower() in ("http", "https") or ":" in userinfo


class ImageParams(Params):
    """A container image in a registry (`ref`), an OCI layout directory (`oci`) or a `docker save`
    tarball (`archive`)."""

    ref: str | None = Field(default=None, description="registry[:port]/repository[:tag][@sha256:...]")
    oci: str | None = Field(default=None, description="an OCI image layout directory, optionally DIR:REF")
    archive: str | None = Field(default=None, description="a `docker save` tarball")
    platform: str = Field(default="linux/amd64", pattern=r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
    token_env: str | None = Field(default=None, description="variable holding a registry bearer token")
    username_env: str | None = Field(default=None, description="variable holding the registry username")
    password_env: str | None = Field(default=None, description="variable holding the registry password")

    @model_validator(mode="after")
    def _one_image(self) -> ImageParams:
        if sum(v is not None for v in (self.ref, self.oci, self.archive)) != 1:
            raise ValueError("set exactly one of `ref` (a registry image), `oci` (a layout) or `archive`")
        return self


class InventoryCollector:
    def __init__(self, read: Callable[[CollectContext], Inventory | None], include_dev: bool = True) -> None:
        self.read = read
        self.include_dev = include_dev

    def collect(self, ctx: CollectContext) -> CollectResult:
        try:
            inventory = self.read(ctx)
        except InventoryError as exc:
            raise SourceError(str(exc)) from None
        if inventory is None:  # unchanged since the last run (a git ref still at the same commit)
            previous = from_checkpoint(ctx.checkpoint)
            count = float(len(previous[0].packages)) if previous else 0.0
            return CollectResult(readings=[Reading("stack_inventory_packages", count, {"source": ctx.source})])
        if not self.include_dev:
            kept = tuple(p for p in inventory.packages if p.scope != "dev")
            inventory = Inventory(
                inventory.kind,
                inventory.location,
                kept,
                inventory.python_version,
                inventory.torch,
                inventory.files,
                inventory.notes,
            )
        previous = from_checkpoint(ctx.checkpoint)
        events = [
            EventDraft(
                kind=EVENT_KIND,
                subject=change.package[:200],
                old=change.old,
                new=change.new,
                message=change.message(),
                labels={"change": change.kind, "target": inventory.location[:200]},
            )
            for change in changes(previous[0] if previous else None, inventory)
        ]
        # stored as the series `stack_inventory_packages` (exported as mlmon_stack_inventory_packages)
        readings = [Reading("stack_inventory_packages", float(len(inventory.packages)), {"source": ctx.source})]
        return CollectResult(readings=readings, events=events, checkpoint=to_checkpoint(inventory, ctx.now))


def _python_env(params: PythonEnvParams) -> InventoryCollector:
    return InventoryCollector(lambda ctx: read_environment(params.path))


def _lockfile(params: LockfileParams) -> InventoryCollector:
    target = params.environment.target() if params.environment else None
    return InventoryCollector(lambda ctx: read_lockfile(params.path, params.format, target), params.include_dev)


def _sbom(params: SbomParams) -> InventoryCollector:
    return InventoryCollector(lambda ctx: read_sbom(params.path, params.format))


def data_dir(env: Mapping[str, str]) -> Path:
    """Where mlmon keeps fetched repositories: `MLMON_DATA_DIR`, default ./mlmon-data."""
    return Path(env.get("MLMON_DATA_DIR") or "mlmon-data").expanduser()


def _remote_commit(checkpoint: Mapping[str, Any]) -> str | None:
    value = checkpoint.get("commit")
    return value if isinstance(value, str) else None


def _repo(params: RepoParams) -> InventoryCollector:
    target = params.environment.target() if params.environment else None
    if params.path is not None:
        local = params.path.strip()
        return InventoryCollector(
            lambda ctx: read_repo(
                local,
                max_depth=params.max_depth,
                exclude=params.exclude,
                environments=params.environments,
                target=target,
            )
        )
    return GitRepoCollector(params, target)


class GitRepoCollector(InventoryCollector):
    """A git remote: read again only when the ref's commit changes; the commit is checkpointed."""

    def __init__(self, params: RepoParams, target: Target | None) -> None:
        super().__init__(self._read)
        self.params = params
        self.target = target
        self._commit: str | None = None

    def _read(self, ctx: CollectContext) -> Inventory | None:
        assert self.params.url is not None
        auth = auth_from_env(ctx.env, self.params.token_env, self.params.username_env, self.params.password_env)
        remote = Remote(self.params.url, self.params.ref, auth)
        where = data_dir(ctx.env)
        try:
            commit = resolve(remote, where)
        except GitError as exc:
            raise InventoryError(self.params.url, str(exc)) from None
        if commit == _remote_commit(ctx.checkpoint) and from_checkpoint(ctx.checkpoint) is not None:
            return None
        self._commit = commit
        return read_remote(
            remote,
            commit,
            where,
            paths=self.params.paths,
            exclude=self.params.exclude,
            max_depth=self.params.max_depth,
            target=self.target,
        )

    def collect(self, ctx: CollectContext) -> CollectResult:
        result = super().collect(ctx)
        if result.checkpoint is None or self._commit is None:
            return result
        return CollectResult(result.readings, result.events, {**result.checkpoint, "commit": self._commit})


def _image(params: ImageParams) -> InventoryCollector:
    def read(ctx: CollectContext) -> Inventory:
        if params.oci is not None:
            return read_oci_layout(params.oci, params.platform)
        if params.archive is not None:
            return read_docker_archive(params.archive, params.platform)
        assert params.ref is not None
        credentials = Credentials(
            env_value(ctx.env, params.username_env, "registry username") if params.username_env else None,
            env_value(ctx.env, params.password_env, "registry password") if params.password_env else None,
            env_value(ctx.env, params.token_env, "registry token") if params.token_env else None,
        )
        with ctx.http.client() as client:
            return read_registry_image(params.ref, client, credentials, params.platform)

    return InventoryCollector(read)


PYTHON_ENV: SourceKind[PythonEnvParams] = SourceKind(
    "python_env",
    PythonEnvParams,
    _python_env,
    "installed packages of a virtualenv, conda env or site-packages (read, never imported)",
)
LOCKFILE: SourceKind[LockfileParams] = SourceKind(
    "lockfile",
    LockfileParams,
    _lockfile,
    "pinned packages of requirements.txt, poetry.lock, uv.lock, Pipfile.lock, pylock.toml, "
    "environment.yml, conda-lock.yml",
)
SBOM: SourceKind[SbomParams] = SourceKind(
    "sbom", SbomParams, _sbom, "components of a CycloneDX or SPDX JSON SBOM (by purl)"
)
REPO: SourceKind[RepoParams] = SourceKind(
    "repo",
    RepoParams,
    _repo,
    "every lock file, SBOM and environment under a directory, or in a git remote's ref (fetched shallowly)",
)
IMAGE: SourceKind[ImageParams] = SourceKind(
    "image",
    ImageParams,
    _image,
    "Python packages installed in a container image (registry, OCI layout or docker save tarball)",
)

KINDS = (PYTHON_ENV, LOCKFILE, SBOM, REPO, IMAGE)
