"""What `mlmon scan` reads: its positional inputs and `--type` overrides, each turned into an inventory.

An input is a path (environment, directory, lock file, SBOM) or an image (`image:REF`,
`oci:DIR[:REF]`, `docker-archive:FILE`). `--type PATH=FORMAT` (or `FORMAT:PATH`) names the format
when the file name does not (a `locked.txt`, an SBOM called `results.json`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import httpx

from monitor.stack.inventory.environment import read_environment
from monitor.stack.inventory.image.manifests import DEFAULT_PLATFORM
from monitor.stack.inventory.image.read import is_image_spec, read_image_spec
from monitor.stack.inventory.model import Inventory, InventoryError
from monitor.stack.inventory.reader import LockFormat, read_lockfile, read_path, read_repo, read_sbom
from monitor.stack.inventory.target import Target

LOCK_FORMATS: tuple[str, ...] = tuple(f for f in get_args(LockFormat) if f != "auto")
SBOM_FORMATS = ("cyclonedx", "spdx")
OTHER_FORMATS = ("environment", "repo")
FORMATS: tuple[str, ...] = (*LOCK_FORMATS, *SBOM_FORMATS, *OTHER_FORMATS)


def _format_name(text: str) -> str | None:
    name = text.strip().lower().replace("-", "_")
    aliases = {"pipfile_lock": "pipfile", "conda": "conda_env", "cdx": "cyclonedx", "venv": "environment"}
    name = aliases.get(name, name)
    return name if name in FORMATS else None


def parse_type(text: str) -> tuple[str, str]:
    """`PATH=FORMAT` or `FORMAT:PATH` -> (path, format)."""
    if "=" in text:
        path, _, fmt = text.rpartition("=")
        found = _format_name(fmt)
        if path and found:
            return path, found
    if ":" in text:
        fmt, _, path = text.partition(":")
        found = _format_name(fmt)
        if path and found:
            return path, found
    raise ValueError(f"{text!r}: expected PATH=FORMAT or FORMAT:PATH with FORMAT one of {', '.join(FORMATS)}")


@dataclass(frozen=True)
class ScanInput:
    spec: str
    format: str | None = None


def plan_inputs(paths: Iterable[str], types: Iterable[str]) -> list[ScanInput]:
    """Positional inputs in order, each with its `--type` override; a typed path not given
    positionally is scanned too."""
    overrides: dict[str, str] = {}
    for text in types:
        path, fmt = parse_type(text)
        overrides[path] = fmt
    inputs = [ScanInput(p, overrides.pop(p, None)) for p in paths]
    inputs += [ScanInput(p, f) for p, f in overrides.items()]
    return inputs


def read_input(
    item: ScanInput,
    *,
    target: Target | None,
    client: httpx.Client | None,
    env: Mapping[str, str],
    platform: str = DEFAULT_PLATFORM,
) -> Inventory:
    spec, fmt = item.spec, item.format
    if fmt is None and is_image_spec(spec):
        return read_image_spec(spec, client, env, platform)
    path = Path(spec).expanduser()
    if fmt is None:
        if target is not None and path.is_file():
            try:
                return read_lockfile(path, target=target)
            except InventoryError as exc:
                if "cannot tell the lock file format" not in exc.reason:
                    raise
        if target is not None and path.is_dir() and not _is_environment(path):
            return read_repo(path, target=target)
        return read_path(path)
    if not path.exists():
        raise InventoryError(str(path), "no such file or directory")
    if fmt in SBOM_FORMATS:
        return read_sbom(path, fmt)  # type: ignore[arg-type]
    if fmt == "environment":
        return read_environment(path)
    if fmt == "repo":
        return read_repo(path, target=target)
    return read_lockfile(path, fmt, target)  # type: ignore[arg-type]


def _is_environment(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file() or (path / "conda-meta").is_dir() or any(path.glob("*.dist-info"))
