"""Real-data servers for the stack tests: the OSV API and a PEP 691 package index, on LocalHttpServer.

OSV: `POST /v1/querybatch` answers package queries (no version: every record naming the package,
as the service does) page by page with `next_page_token`, and `GET /v1/vulns/<id>` the full record
from ../shared/data/osv. Index: torch's real release history (../shared/data/pypi) as a PEP 691
project page (`Accept: application/vnd.pypi.simple.v1+json`, PEP 700 upload times) and as the JSON
API (`/pypi/torch/json`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from tests.support.http_server import Answer, LocalHttpServer, Seen
from tests.support.peers import REPO, missing, shared_data

PEP691 = "application/vnd.pypi.simple.v1+json"
CACHE = REPO / ".cache" / "stack"


def osv_documents() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(shared_data("osv", "PyPI").rglob("*.json"))]


def torch_releases() -> dict[str, dict[str, Any]]:
    data = json.loads(shared_data("pypi", "torch-releases.json").read_text())
    releases: dict[str, dict[str, Any]] = data["releases"]
    return releases


class OsvApi:
    """The OSV API over a fixed set of records, recording each request."""

    def __init__(self, server: LocalHttpServer, docs: Iterable[Mapping[str, Any]], page_size: int = 1000) -> None:
        self.docs = {d["id"]: d for d in docs}
        self.page_size = page_size
        self.server = server
        server.route("/v1/querybatch", self.querybatch)
        for ident in self.docs:
            server.route(f"/v1/vulns/{ident}", self._vuln(ident))

    def _vuln(self, ident: str) -> Any:
        def answer(seen: Seen) -> Answer:
            if seen.method != "GET":
                return Answer({"code": 12, "message": "Method not allowed"}, status=405)
            return Answer(self.docs[ident])

        return answer

    def records_of(self, name: str, ecosystem: str) -> list[Mapping[str, Any]]:
        wanted = canonicalize_name(name)
        return [
            d
            for d in self.docs.values()
            if any(
                a.get("package", {}).get("ecosystem") == ecosystem
                and canonicalize_name(a.get("package", {}).get("name", "")) == wanted
                for a in d.get("affected") or []
            )
        ]

    def querybatch(self, seen: Seen) -> Answer:
        try:
            body = json.loads(seen.body)
            queries = body["queries"]
        except (ValueError, KeyError, TypeError):
            return Answer({"code": 3, "message": "Invalid query."}, status=400)
        results = []
        for query in queries:
            pkg = query.get("package") or {}
            if "version" in query:  # the client under test never asks by version
                return Answer({"code": 3, "message": "this test server answers package queries only"}, status=400)
            records = sorted(self.records_of(pkg.get("name", ""), pkg.get("ecosystem", "")), key=lambda d: d["id"])
            start = int(query.get("page_token") or 0)
            page = records[start : start + self.page_size]
            result: dict[str, Any] = {}
            if page:
                result["vulns"] = [{"id": d["id"], "modified": d["modified"]} for d in page]
            if start + self.page_size < len(records):
                result["next_page_token"] = str(start + self.page_size)
            results.append(result)
        return Answer({"results": results})


def pep691_page(name: str, releases: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    files = []
    for version, info in releases.items():
        yanked = info.get("yanked")
        files.append(
            {
                "filename": f"{name}-{version}-cp311-cp311-manylinux_2_28_x86_64.whl",
                "url": f"../../files/{name}-{version}.whl",
                "hashes": {"sha256": "0" * 64},
                "requires-python": info.get("requires_python"),
                "size": 1,
                "upload-time": info["upload_time"],
                "yanked": yanked if isinstance(yanked, str) else bool(yanked),
            }
        )
    return {"meta": {"api-version": "1.1"}, "name": name, "versions": sorted(releases), "files": files}


def json_api_doc(name: str, releases: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    latest = max(releases, key=lambda v: tuple(int(p) for p in v.split(".") if p.isdigit()))
    return {
        "info": {"name": name, "version": latest},
        "releases": {
            version: [
                {
                    "filename": f"{name}-{version}-cp311-cp311-manylinux_2_28_x86_64.whl",
                    "upload_time_iso_8601": info["upload_time"],
                    "yanked": bool(info.get("yanked")),
                    "yanked_reason": info.get("yanked") if isinstance(info.get("yanked"), str) else None,
                    "requires_python": info.get("requires_python"),
                }
            ]
            for version, info in releases.items()
        },
        "urls": [],
        "vulnerabilities": [],
    }


class PackageIndex:
    """A PEP 691 simple index (and the JSON API) for the given projects."""

    def __init__(self, server: LocalHttpServer, projects: Mapping[str, Mapping[str, Mapping[str, Any]]],
                 pep691: bool = True) -> None:  # fmt: skip
        self.server = server
        for name, releases in projects.items():
            page, doc = pep691_page(name, releases), json_api_doc(name, releases)
            server.route(f"/simple/{name}/", self._simple(page, pep691))
            server.route(f"/pypi/{name}/json", Answer(doc))

    @staticmethod
    def _simple(page: dict[str, Any], pep691: bool) -> Any:
        def answer(seen: Seen) -> Answer:
            if pep691 and PEP691 in (seen.header("Accept") or ""):
                return Answer(json.dumps(page).encode(), headers={"Content-Type": PEP691})
            return Answer("<html><body>simple page</body></html>", headers={"Content-Type": "text/html"})

        return answer

    @property
    def url(self) -> str:
        return self.server.url("/simple")


def run(cmd: list[str], cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float = 900) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=dict(env) if env else None, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def cached_venv(name: str, packages: list[str], what: str) -> Path:
    """A virtualenv under .cache/stack, created once (pip install, with pip's configured index) and reused."""
    venv = CACHE / name
    marker = venv / ".mlmon-ready"
    if marker.exists():
        return venv
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        run([sys.executable, "-m", "venv", "--clear", str(venv)])
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *packages], timeout=1800)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        missing(what, f"`pip install {' '.join(packages)}` into {venv} failed: {exc}")
    marker.write_text(" ".join(packages) + "\n")
    return venv
