"""The environment a lock file is installed into, and which of its entries apply there.

Lock files pin packages for several platforms and Python versions at once: `nvidia-*` wheels only
on Linux x86_64, a CPU torch on macOS beside a CUDA one on Linux. Without a target every pin is
checked, so a finding may concern a platform the project never runs on but none is missed. With a
target, PEP 508 markers are evaluated by `packaging.markers` against a complete environment built
from what was declared, so nothing of the machine running mlmon leaks into the verdict.

Extras stay conservative: a marker that tests `extra` holds when it holds for no extra or for any
one extra it names (uv encodes its conflicting extras and groups that way, e.g. a CPU and a CUDA
torch as two extras), and a marker `packaging` cannot parse keeps its entry, with a note.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from packaging.markers import InvalidMarker, Marker

Platform = Literal["linux", "darwin", "win32"]

_SYSTEM = {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}
_CONDA_OS = {"linux": "linux", "darwin": "osx", "win32": "win"}
_CONDA_ARCH = {"x86_64": "64", "amd64": "64", "aarch64": "aarch64", "arm64": "arm64", "ppc64le": "ppc64le"}
_NAMED_EXTRA = re.compile(r"""\bextra\s*==\s*(['"])(.+?)\1""")
NOTE_NAMES = 12
_ENV_KEYS = {
    "python_version": re.compile(r"^\d+\.\d+$"),
    "python_full_version": re.compile(r"^\d+\.\d+\.\d+$"),
    "sys_platform": re.compile(r"^(linux|darwin|win32)$"),
    "platform_machine": re.compile(r"^[A-Za-z0-9_]+$"),
    "implementation_name": re.compile(r"^[a-z]+$"),
}
_ENV_HELP = {
    "python_version": 'expected major.minor, e.g. "3.11"',
    "python_full_version": 'expected major.minor.micro, e.g. "3.11.9"',
    "sys_platform": "expected linux, darwin or win32",
    "platform_machine": "expected a machine name such as x86_64, aarch64 or arm64",
    "implementation_name": "expected a lower-case name such as cpython",
}


@dataclass(frozen=True)
class Target:
    """A complete PEP 508 environment (every variable set) and the matching conda subdir."""

    environment: Mapping[str, str]
    conda_subdir: str | None
    python: str
    """The Python as declared: `3.11`, or `3.11.9` when the full version was given."""
    _verdicts: dict[str, bool | None] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def declare(
        cls,
        *,
        python_version: str,
        sys_platform: Platform = "linux",
        platform_machine: str = "x86_64",
        python_full_version: str | None = None,
        implementation_name: str = "cpython",
    ) -> Target:
        full = python_full_version or f"{python_version}.0"
        implementation = {"cpython": "CPython", "pypy": "PyPy"}.get(implementation_name, implementation_name)
        environment = {
            "implementation_name": implementation_name,
            "implementation_version": full,
            "os_name": "nt" if sys_platform == "win32" else "posix",
            "platform_machine": platform_machine,
            "platform_python_implementation": implementation,
            # release and kernel version are not declared: markers on them compare against ""
            "platform_release": "",
            "platform_system": _SYSTEM[sys_platform],
            "platform_version": "",
            "python_full_version": full,
            "python_version": python_version,
            "sys_platform": sys_platform,
        }
        arch = _CONDA_ARCH.get(platform_machine.lower())
        subdir = f"{_CONDA_OS[sys_platform]}-{arch}" if arch else None
        return cls(environment, subdir, python_full_version or python_version)

    @classmethod
    def parse(cls, text: str) -> Target:
        """`python_version=3.11,sys_platform=linux[,platform_machine=x86_64,python_full_version=3.11.9,
        implementation_name=cpython]`: the configuration's `environment` on one line."""
        values: dict[str, str] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip().strip("'\"")
            if not sep or key not in _ENV_KEYS:
                raise ValueError(f"{item!r}: expected KEY=VALUE with KEY one of {', '.join(_ENV_KEYS)}")
            if not _ENV_KEYS[key].match(value):
                raise ValueError(f"{key}={value!r}: {_ENV_HELP[key]}")
            values[key] = value
        if "python_version" not in values:
            raise ValueError("python_version is required, e.g. python_version=3.11,sys_platform=linux")
        full = values.get("python_full_version")
        if full is not None and not full.startswith(values["python_version"] + "."):
            raise ValueError(f"python_full_version {full!r} is not a {values['python_version']} release")
        platform = values.get("sys_platform", "linux")
        return cls.declare(
            python_version=values["python_version"],
            sys_platform=platform,  # type: ignore[arg-type]  # checked by its pattern
            platform_machine=values.get("platform_machine", "x86_64"),
            python_full_version=full,
            implementation_name=values.get("implementation_name", "cpython"),
        )

    @property
    def sys_platform(self) -> str:
        return self.environment["sys_platform"]

    def describe(self) -> str:
        return f"Python {self.python} on {self.sys_platform} {self.environment['platform_machine']}"

    def holds(self, marker: str | Marker | None) -> bool | None:
        """Whether an entry with this marker is installed on the target; None: the marker could not
        be read (the caller keeps the entry and says so)."""
        if marker is None:
            return True
        text = str(marker).strip()
        if not text:
            return True
        if text not in self._verdicts:
            self._verdicts[text] = self._evaluate(text)
        return self._verdicts[text]

    def _evaluate(self, text: str) -> bool | None:
        try:
            parsed = Marker(text)
        except InvalidMarker:
            return None
        extras = [""] + [m.group(2) for m in _NAMED_EXTRA.finditer(text)]
        return any(parsed.evaluate({**self.environment, "extra": extra}) for extra in extras)

    def matches_conda(self, platform: object) -> bool:
        """Whether a conda-lock entry locked for `platform` (a subdir such as `linux-64`) applies."""
        if self.conda_subdir is None or not isinstance(platform, str) or platform == "noarch":
            return True
        return platform == self.conda_subdir


@dataclass
class Selection:
    """What a parser left out for the target, gathered into the inventory's notes."""

    target: Target | None
    origin: str
    skipped: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)

    def keeps(self, name: str, markers: str | Marker | Iterable[str | Marker] | None) -> bool:
        """Whether the entry applies to the target: any of its markers holds (no target: always)."""
        if self.target is None or markers is None:
            return True
        found = [markers] if isinstance(markers, str | Marker) else list(markers)
        if not found:
            return True
        verdicts = [self.target.holds(m) for m in found]
        if any(v is True for v in verdicts):
            return True
        if any(v is None for v in verdicts):
            self.unread.append(f"{name} ({'; '.join(str(m) for m in found)})")
            return True
        self.skipped.append(name)
        return False

    def skip(self, name: str) -> None:
        self.skipped.append(name)

    def notes(self) -> list[str]:
        if self.target is None:
            return []
        notes = []
        if self.skipped:
            names = sorted(set(self.skipped))
            shown = ", ".join(names[:NOTE_NAMES]) + (
                f" and {len(names) - NOTE_NAMES} more" if len(names) > NOTE_NAMES else ""
            )
            notes.append(
                f"{self.origin}: {_entries(len(self.skipped))} not installed on the target "
                f"({self.target.describe()}) and were not checked: {shown}"
            )
        notes.extend(
            f"{self.origin}: marker of {entry} could not be read; the entry is checked" for entry in self.unread
        )
        return notes


def _entries(count: int) -> str:
    return "1 entry is" if count == 1 else f"{count} entries are"
