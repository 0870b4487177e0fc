"""requirements.txt: exact pins (`torch==2.5.1+cu121 --hash=...`), index options and `-r` includes.

The line grammar (continuations, comments, option lines, per-requirement `--hash` options) is
pip's and is read here line by line, so every package keeps its line number for errors and SARIF
locations; each requirement itself is parsed by `packaging.requirements.Requirement`.
pip-requirements-parser would do the line handling too, but it has not been released since 2022
and does not report positions. Unpinned requirements are not an inventory: they are listed as
notes and not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

from monitor.stack.inventory.model import Inventory, InventoryError, Package, package
from monitor.stack.inventory.target import Selection, Target

_COMMENT = re.compile(r"(^|\s+)#.*$")
_FILE_OPTIONS_WITH_VALUE = {
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--trusted-host",
    "-c",
    "--constraint",
    "-r",
    "--requirement",
    "--only-binary",
    "--no-binary",
    "--prefer-binary",
    "--use-feature",
    "-e",
    "--editable",
    "--pre",
    "--no-index",
    "--require-hashes",
}
MAX_INCLUDE_DEPTH = 10
MAX_INCLUDE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    text: str


def logical_lines(text: str) -> Iterator[Line]:
    """Lines with continuations joined and comments removed, each with its first line number."""
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        line = _COMMENT.sub("", raw).rstrip()
        if line.endswith("\\"):
            buffer.append(line[:-1])
            continue
        buffer.append(line)
        joined = " ".join(part.strip() for part in buffer).strip()
        buffer = []
        if joined:
            yield Line(start, joined)
    if buffer:
        joined = " ".join(part.strip() for part in buffer).strip()
        if joined:
            yield Line(start, joined)


def parse_requirements(
    text: str,
    origin: str,
    *,
    base: Path | None = None,
    depth: int = 0,
    seen: frozenset[str] = frozenset(),
    target: Target | None = None,
    root: Path | None = None,
) -> Inventory:
    """Packages pinned in a requirements file (following `-r` includes relative to `base`, inside
    `root`, by default `base`); with a target, only the lines whose markers hold there."""
    return parse_lines(logical_lines(text), origin, base=base, depth=depth, seen=seen, target=target, root=root)


def parse_lines(
    lines: Iterable[Line],
    origin: str,
    *,
    base: Path | None = None,
    depth: int = 0,
    seen: frozenset[str] = frozenset(),
    target: Target | None = None,
    root: Path | None = None,
) -> Inventory:
    """Packages pinned in requirement lines (a file, or the `pip:` list of a conda environment)."""
    packages: list[Package] = []
    notes: list[str] = []
    selection = Selection(target, origin)
    files = [origin]
    index: str | None = None
    for line in lines:
        if line.text.startswith("-"):
            option, value = _option(line, origin)
            if option in ("-i", "--index-url"):
                index = value
            elif option in ("-r", "--requirement") and value:
                included = _include(value, origin, base, line, depth, seen, target, root)
                packages.extend(included.packages)
                notes.extend(included.notes)
                files.extend(included.files)
            elif option in ("-e", "--editable"):
                notes.append(f"{origin}:{line.number}: editable requirement {value!r} has no version; not checked")
            elif option in ("-c", "--constraint"):
                notes.append(f"{origin}:{line.number}: constraints file {value!r} installs nothing; not read")
            continue
        found = _requirement(line, origin, index, selection)
        if isinstance(found, Package):
            packages.append(found)
        elif found:
            notes.append(found)
    notes.extend(selection.notes())
    return Inventory("lockfile", origin, tuple(packages), files=tuple(files), notes=tuple(notes))


def _option(line: Line, origin: str) -> tuple[str, str | None]:
    text = line.text
    if "=" in text.split()[0]:
        option, _, value = text.split()[0].partition("=")
        return option, value
    parts = text.split(None, 1)
    option = parts[0]
    if option not in _FILE_OPTIONS_WITH_VALUE:
        raise InventoryError(origin, f"unknown option {option!r}", line.number, 1)
    return option, parts[1].strip() if len(parts) > 1 else None


class _IncludeRefused(InventoryError):
    """An include not followed; the message names paths only."""


def _include(
    value: str,
    origin: str,
    base: Path | None,
    line: Line,
    depth: int,
    seen: frozenset[str],
    target: Target | None,
    root: Path | None,
) -> Inventory:
    """The inventory of an `-r` include. Only files inside the directory of the file that was
    asked for are followed: the reason of a failed source is shown to every reader, so an include
    of `/etc/passwd` or `../.env` must never be opened, and a failing include is named by its path
    and line only, never by its text."""
    if base is None:
        raise _IncludeRefused(origin, f"-r {value}: includes cannot be followed for this input", line.number, 1)
    root = root or base.resolve()
    path = (base / value).resolve()
    if not path.is_relative_to(root):
        raise _IncludeRefused(origin, f"-r {value}: not followed; includes must stay inside {root}", line.number, 1)
    if depth >= MAX_INCLUDE_DEPTH or str(path) in seen:
        raise _IncludeRefused(
            origin, f"-r {value}: include cycle or more than {MAX_INCLUDE_DEPTH} levels", line.number, 1
        )
    try:
        if path.stat().st_size > MAX_INCLUDE_BYTES:
            raise _IncludeRefused(origin, f"-r {value}: larger than {MAX_INCLUDE_BYTES:,} bytes", line.number, 1)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _IncludeRefused(
            origin, f"-r {value}: cannot read it ({exc.strerror or 'error'})", line.number, 1
        ) from None
    except UnicodeDecodeError:
        raise _IncludeRefused(origin, f"-r {value}: not UTF-8 text", line.number, 1) from None
    try:
        return parse_requirements(
            text, str(path), base=path.parent, depth=depth + 1, seen=seen | {str(path)}, target=target, root=root
        )
    except _IncludeRefused:
        raise
    except InventoryError as exc:
        at = f" line {exc.line}" if exc.line is not None else ""
        raise _IncludeRefused(
            origin, f"-r {value}: {path}{at} is not a valid requirements line", line.number, 1
        ) from None


def _strip_options(text: str) -> str:
    """The requirement without trailing per-requirement options (`--hash=sha256:...`), as pip splits it:
    the options start at the first whitespace-separated token beginning with `-`."""
    kept: list[str] = []
    for token in text.split(" "):
        if token.startswith("-"):
            break
        kept.append(token)
    return " ".join(kept).strip()


def _requirement(line: Line, origin: str, index: str | None, selection: Selection) -> Package | str | None:
    """The pinned package, a note on why the line is not checked, or None: not for the target."""
    text = _strip_options(line.text)
    if "://" in text.split(";")[0] and "@" not in text.split("://")[0]:
        url, _, marker = text.partition(";")
        found = _from_url(url.strip(), origin, line, index)
        if found is not None and not selection.keeps(f"{found.name}=={found.version}", marker or None):
            return None
        return found or f"{origin}:{line.number}: URL requirement without a wheel or sdist file name; not checked"
    try:
        req = _parsed(text)
    except InvalidRequirement as exc:
        raise InventoryError(origin, f"invalid requirement {text!r}: {exc}", line.number, 1) from None
    if not selection.keeps(f"{req.name}{req.specifier}", req.marker):
        return None
    if req.url:
        found = _from_url(req.url, origin, line, index, name=req.name)
        return found or f"{origin}:{line.number}: {req.name} @ URL without a version in its file name; not checked"
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return package(req.name, specs[0].version, origin, line=line.number, index=index)
    shown = str(req.specifier) or "(any version)"
    return f"{origin}:{line.number}: {req.name}{shown} is not pinned to one version; not checked"


@lru_cache(maxsize=4096)
def _parsed(text: str) -> Requirement:
    """Requirement parsing is the cost of a long file; repeated lines are parsed once."""
    return Requirement(text)


def _from_url(url: str, origin: str, line: Line, index: str | None, name: str | None = None) -> Package | None:
    filename = unquote(Path(urlparse(url).path).name)
    try:
        wheel_name, version, _build, _tags = parse_wheel_filename(filename)
        return package(name or wheel_name, str(version), origin, line=line.number, index=index)
    except InvalidWheelFilename:
        pass
    try:
        sdist_name, sdist_version = parse_sdist_filename(filename)
        return package(name or sdist_name, str(sdist_version), origin, line=line.number, index=index)
    except InvalidSdistFilename:
        return None
