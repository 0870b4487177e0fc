"""Inventory source kinds: `python_env`, `lockfile`, `sbom`, `repo`.

Each run reads the target (nothing from it is imported or run), hands the inventory over in the
source's checkpoint (stored atomically with the run; the stack family copies it into its tables),
reports version changes as events ("torch 2.14.1 -> 2.15.0") and the package count as a reading.
A target that cannot be read fails the run with the file and position; the previous inventory
stays in force.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field, field_validator, model_validator

from collectors.base import CollectContext, CollectResult, EventDraft, Params, Reading, SourceError, SourceKind
from monitor.stack.inventory.changes import changes, from_checkpoint, to_checkpoint
from monitor.stack.inventory.environment import read_environment
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


class RepoParams(_PathParams):
    max_depth: int = Field(default=6, ge=0, le=32)
    exclude: list[str] = Field(default_factory=list, description="glob patterns of paths to skip")
    environments: bool = Field(default=True, description="also read virtualenvs / conda envs found inside")
    environment: EnvironmentParams | None = Field(
        default=None, description="the target environment of the lock files found; see `lockfile`"
    )


class InventoryCollector:
    def __init__(self, read: Callable[[], Inventory], include_dev: bool = True) -> None:
        self.read = read
        self.include_dev = include_dev

    def collect(self, ctx: CollectContext) -> CollectResult:
        try:
            inventory = self.read()
        except InventoryError as exc:
            raise SourceError(str(exc)) from None
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
    return InventoryCollector(lambda: read_environment(params.path))


def _lockfile(params: LockfileParams) -> InventoryCollector:
    target = params.environment.target() if params.environment else None
    return InventoryCollector(lambda: read_lockfile(params.path, params.format, target), params.include_dev)


def _sbom(params: SbomParams) -> InventoryCollector:
    return InventoryCollector(lambda: read_sbom(params.path, params.format))


def _repo(params: RepoParams) -> InventoryCollector:
    target = params.environment.target() if params.environment else None
    return InventoryCollector(
        lambda: read_repo(
            params.path,
            max_depth=params.max_depth,
            exclude=params.exclude,
            environments=params.environments,
            target=target,
        )
    )


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
    "repo", RepoParams, _repo, "every lock file, SBOM and environment found under a directory"
)

KINDS = (PYTHON_ENV, LOCKFILE, SBOM, REPO)
