"""A PEP 691 index with torch and its companions, for the remediation plan's tests.

torch's versions, upload times, yanks and requires-python are the real release history
(../shared/data/pypi/torch-releases.json). Its files carry the wheel tags the index publishes
(stack-next.md §1.6: cp39-cp313 x manylinux1/2014/win/macOS up to 2.5, manylinux_2_28 from 2.6; the
Python range per release from the release compatibility matrix, §1.4). Companion metadata is what
the index's own METADATA files say (§1.3, observed), completed for the release lines in between from
the published compatibility tables (pytorch/vision README, the torchaudio matrix; triton as torch's
own Requires-Dist pins it). Core metadata is served as PEP 658 `.metadata` files, except for the
releases where the index was observed to answer 404 (torchvision 0.20.1): there only the wheel
(a real zip, served with HTTP range requests) holds it.

A second index, `/whl/cu121/`, holds the `+cu121` variant, which stops at torch 2.5.1 (§1.4).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from tests.monitor.stack.support import torch_releases
from tests.support.http_server import Answer, LocalHttpServer, Seen

PEP691 = "application/vnd.pypi.simple.v1+json"

TRITON_OF_TORCH = {
    "2.5.0": "3.1.0",
    "2.5.1": "3.1.0",
    "2.6.0": "3.2.0",
    "2.7.0": "3.3.0",
    "2.7.1": "3.3.1",
    "2.8.0": "3.4.0",
    "2.9.0": "3.5.0",
    "2.9.1": "3.5.1",
}
TORCHVISION = {
    "0.20.0": "torch (==2.5.0)",
    "0.20.1": "torch (==2.5.1)",
    "0.21.0": "torch (==2.6.0)",
    "0.22.0": "torch (==2.7.0)",
    "0.22.1": "torch (==2.7.1)",
    "0.23.0": "torch (==2.8.0)",
    "0.24.0": "torch (==2.9.0)",
    "0.24.1": "torch (==2.9.1)",
    "0.25.0": "torch (==2.10.0)",
    "0.26.0": "torch (==2.11.0)",
    "0.27.0": "torch (==2.12.0)",
    "0.28.0": "torch (==2.13.0)",
    "0.29.0": "torch (==2.14.0)",
    "0.29.1": "torch (>=2.14.0)",
}
TORCHAUDIO: dict[str, str | None] = {
    **{v: f"torch (=={v})" for v in ("2.5.0", "2.5.1", "2.6.0", "2.7.0", "2.7.1", "2.8.0", "2.9.0", "2.9.1", "2.10.0")},
    "2.11.0": None,
    "2.11.1": "torch>=2.11",
}
TORCHTEXT = {"0.18.0": "torch (>=2.3.0)"}
NO_METADATA_FILE = {"torchvision-0.20.1"}
"""Releases whose `.metadata` the index answers 404 for (observed): read from the wheel instead."""


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v))


def _torch_pythons(version: str) -> list[str]:
    key = _version_key(version)
    low, high = (9, 13) if key >= (2, 5) else (8, 12)
    if key >= (2, 9):
        low, high = 10, 14
    if key >= (2, 15):
        low = 11
    if key < (2, 2):
        high = 11
    return [f"cp3{m}" for m in range(low, high + 1)]


def _torch_platforms(version: str) -> list[str]:
    if _version_key(version) < (2, 6):
        return ["manylinux1_x86_64", "manylinux2014_aarch64", "win_amd64", "macosx_11_0_arm64"]
    return ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "win_amd64", "macosx_11_0_arm64"]


def metadata_text(name: str, version: str, requires: list[str], requires_python: str | None) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n\nlong description\n"


def wheel_bytes(filename: str, metadata: str) -> bytes:
    """A real wheel (zip) whose `.dist-info` is last, padded so range reads matter."""
    name, version = filename.split("-")[:2]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        wheel.writestr(f"{name}/__init__.py", "# " + "x" * 200_000)
        wheel.writestr(f"{name}-{version}.dist-info/METADATA", metadata)
        wheel.writestr(f"{name}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return buffer.getvalue()


class PlanIndex:
    """The index on a LocalHttpServer; `down = True` makes every request answer 503."""

    def __init__(self, server: LocalHttpServer) -> None:
        self.server = server
        self.down = False
        self.files: dict[str, bytes] = {}
        self.metadata: dict[str, str] = {}
        releases = torch_releases()
        self._project("/simple/", "torch", self._torch_files(releases, None))
        self._project("/whl/cu121/", "torch", self._torch_files(releases, "cu121"))
        self._project("/simple/", "triton", self._plain("triton", {v: [] for v in TRITON_OF_TORCH.values()}))
        self._project("/simple/", "torchvision", self._plain("torchvision", TORCHVISION, ">=3.8"))
        self._project("/simple/", "torchaudio", self._plain("torchaudio", TORCHAUDIO))
        self._project("/simple/", "torchtext", self._plain("torchtext", TORCHTEXT, ">=3.8"))

    def url(self, base: str = "/simple") -> str:
        return self.server.url(base)

    def requests(self) -> int:
        return len(self.server.requests())

    def _torch_files(self, releases: Mapping[str, Mapping[str, Any]], label: str | None) -> list[dict[str, Any]]:
        out = []
        for version, info in sorted(releases.items(), key=lambda kv: _version_key(kv[0])):
            if _version_key(version) < (2, 0):
                continue
            if label is not None and not ((2, 1) <= _version_key(version) <= (2, 5, 1)):
                continue
            full = f"{version}+{label}" if label else version
            triton = TRITON_OF_TORCH.get(version)
            requires = ["filelock", "typing-extensions>=4.8.0"]
            if triton:
                marker = 'platform_system == "Linux" and platform_machine == "x86_64"'
                if _version_key(version) < (2, 9):
                    marker += ' and python_version < "3.13"'
                requires.append(f"triton=={triton}; {marker}")
            platforms = ["linux_x86_64"] if label else _torch_platforms(version)
            for python in _torch_pythons(version):
                for platform in platforms:
                    filename = f"torch-{full}-{python}-{python}-{platform}.whl"
                    out.append(
                        self._file(filename, info, metadata_text("torch", full, requires, info.get("requires_python")))
                    )
        return out

    def _plain(self, name: str, pins: Mapping[str, Any], requires_python: str | None = None) -> list[dict[str, Any]]:
        out = []
        for version, requirement in pins.items():
            requires = [] if not requirement else [requirement] if isinstance(requirement, str) else list(requirement)
            text = metadata_text(name, version, requires, requires_python)
            info = {"upload_time": "2026-01-01T00:00:00Z", "requires_python": requires_python}
            filename = f"{name}-{version}-py3-none-manylinux_2_28_x86_64.whl"
            out.append(self._file(filename, info, text, serve_metadata=f"{name}-{version}" not in NO_METADATA_FILE))
        return out

    def _file(
        self, filename: str, info: Mapping[str, Any], metadata: str, serve_metadata: bool = True
    ) -> dict[str, Any]:
        path = f"/files/{quote(filename)}"
        if serve_metadata:
            self.server.route(f"{path}.metadata", self._guard(Answer(metadata.encode())))
        else:
            self.server.route(path, self._ranges(wheel_bytes(filename, metadata)))
        yanked = info.get("yanked")
        return {
            "filename": filename,
            "url": f"../..{path}",
            "hashes": {"sha256": "0" * 64},
            "requires-python": info.get("requires_python"),
            "size": 1,
            "upload-time": info["upload_time"],
            "yanked": yanked if isinstance(yanked, str) else bool(yanked),
        }

    def _project(self, base: str, name: str, files: list[dict[str, Any]]) -> None:
        page = {"meta": {"api-version": "1.1", "_last-serial": 1}, "name": name, "files": files}
        body = json.dumps(page).encode()

        def answer(seen: Seen) -> Answer:
            if PEP691 in (seen.header("Accept") or ""):
                return Answer(body, headers={"Content-Type": PEP691})
            return Answer("<html></html>", headers={"Content-Type": "text/html"})

        self.server.route(f"{base}{name}/", self._guard(answer))

    def _guard(self, route: Any) -> Any:
        def answer(seen: Seen) -> Answer:
            if self.down:
                return Answer("index down for the test", status=503)
            return route(seen) if callable(route) else route

        return answer

    def _ranges(self, data: bytes) -> Any:
        def answer(seen: Seen) -> Answer:
            wanted = seen.header("Range")
            if not wanted:
                return Answer(data)
            found = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted.strip())
            assert found, wanted
            start, end = found.groups()
            if not start:
                first, last = max(0, len(data) - int(end)), len(data) - 1
            else:
                first, last = int(start), min(len(data) - 1, int(end) if end else len(data) - 1)
            return Answer(
                data[first : last + 1], status=206, headers={"Content-Range": f"bytes {first}-{last}/{len(data)}"}
            )

        return self._guard(answer)
