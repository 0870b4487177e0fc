"""The package index pip is configured to use, and release histories read from it.

Which index: `PIP_INDEX_URL` in the environment, else `index-url` from `pip config list`, else pip's
own default (read from pip itself, so no index host is written here). A project's history comes
from the PEP 691 JSON simple API (`Accept: application/vnd.pypi.simple.v1+json`; upload times
need PEP 700), falling back to the JSON API (`<root>/pypi/<name>/json`) when the simple API has
no JSON or no upload times.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from monitor.core.errors import SourceError, SourceUnavailable
from monitor.http import parse_json, send, snippet
from monitor.stack.advisories.model import AdvisoryError, parse_time
from monitor.stack.releases import Release, ReleaseHistory

PEP691 = "application/vnd.pypi.simple.v1+json"
_CONFIG_LINE = re.compile(r"^(?P<key>[^=]+)=(?P<value>.*)$")
_INDEX_KEYS = (":env:.index-url", "install.index-url", "download.index-url", "global.index-url")


@dataclass(frozen=True, slots=True)
class IndexChoice:
    url: str
    origin: str
    """Where the URL came from: configuration, `PIP_INDEX_URL`, `pip config`, or pip's default."""


def pip_config_values(python: str = sys.executable, timeout: float = 30.0) -> dict[str, str]:
    """`pip config list` as {key: value} (empty when pip cannot be run)."""
    try:
        done = subprocess.run(
            [python, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    values: dict[str, str] = {}
    for line in done.stdout.splitlines():
        found = _CONFIG_LINE.match(line.strip())
        if found:
            values[found.group("key").strip()] = found.group("value").strip().strip("'\"")
    return values


def pip_default_index() -> str:
    """pip's built-in default index (from pip's own code)."""
    try:
        module = importlib.import_module("pip._internal.models.index")
        return str(module.PyPI.simple_url)
    except (ImportError, AttributeError) as exc:
        raise SourceError(
            "cannot tell which package index pip uses: PIP_INDEX_URL and pip's index-url are unset and pip "
            f"is not importable ({exc}); set stack.index.url"
        ) from None


def configured_index(
    env: Mapping[str, str], override: str | None = None, config: Mapping[str, str] | None = None
) -> IndexChoice:
    """The index pip would use: configuration override, PIP_INDEX_URL, pip config, pip's default."""
    if override:
        return IndexChoice(override.rstrip("/"), "stack.index.url")
    if env.get("PIP_INDEX_URL"):
        return IndexChoice(env["PIP_INDEX_URL"].split()[0].rstrip("/"), "PIP_INDEX_URL")
    values = pip_config_values() if config is None else config
    for key in _INDEX_KEYS:
        if values.get(key):
            return IndexChoice(values[key].split()[0].rstrip("/"), f"pip config {key}")
    return IndexChoice(pip_default_index().rstrip("/"), "pip's default index")


def json_api_root(index_url: str) -> str:
    """`https://host/simple` -> `https://host` (where the JSON API lives)."""
    return re.sub(r"/simple/?$", "", index_url.rstrip("/"))


def _time(value: object, where: str) -> datetime | None:
    try:
        return parse_time(value, where)
    except AdvisoryError:
        return None


def parse_simple(package: str, doc: object, source: str) -> ReleaseHistory:
    """A history from a PEP 691 project page (versions from file names, upload times from PEP 700)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("files"), list):
        raise SourceError(f"{source}: expected a PEP 691 project page with `files`")
    files: dict[str, list[Mapping[str, Any]]] = {}
    for item in doc["files"]:
        if not isinstance(item, Mapping) or not isinstance(item.get("filename"), str):
            continue
        version = _file_version(item["filename"])
        if version is not None:
            files.setdefault(version, []).append(item)
    for version in doc.get("versions", []) or []:
        if isinstance(version, str):
            files.setdefault(version, [])
    releases: dict[str, Release] = {}
    for version, items in files.items():
        times = [t for t in (_time(i.get("upload-time"), f"{source} {version}") for i in items) if t is not None]
        yanked = bool(items) and all(i.get("yanked") not in (None, False) for i in items)
        reasons = [i["yanked"] for i in items if isinstance(i.get("yanked"), str)]
        pythons = [i.get("requires-python") for i in items if i.get("requires-python")]
        releases[version] = Release(
            version,
            min(times) if times else None,
            yanked,
            reasons[0] if reasons else None,
            pythons[-1] if pythons else None,
        )
    return ReleaseHistory(package, releases, source)


def parse_json_api(package: str, doc: object, source: str) -> ReleaseHistory:
    """A history from the JSON API's `releases` (deprecated there, still served)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("releases"), Mapping):
        raise SourceError(f"{source}: expected a JSON API project document with `releases`")
    releases: dict[str, Release] = {}
    for version, items in doc["releases"].items():
        if not isinstance(items, list):
            continue
        entries = [i for i in items if isinstance(i, Mapping)]
        times = [t for t in (_time(i.get("upload_time_iso_8601"), f"{source} {version}") for i in entries) if t]
        yanked = bool(entries) and all(bool(i.get("yanked")) for i in entries)
        reasons = [i["yanked_reason"] for i in entries if i.get("yanked_reason")]
        pythons = [i.get("requires_python") for i in entries if i.get("requires_python")]
        releases[version] = Release(
            version,
            min(times) if times else None,
            yanked,
            reasons[0] if reasons else None,
            pythons[-1] if pythons else None,
        )
    return ReleaseHistory(package, releases, source)


def _file_version(filename: str) -> str | None:
    try:
        return str(parse_wheel_filename(filename)[1])
    except InvalidWheelFilename:
        pass
    try:
        return str(parse_sdist_filename(filename)[1])
    except InvalidSdistFilename:
        return None


def fetch_history(client: httpx.Client, index_url: str, package: str) -> ReleaseHistory:
    """A project's release history from the index (PEP 691, then the JSON API)."""
    name = str(canonicalize_name(package))
    simple_url = f"{index_url.rstrip('/')}/{name}/"
    response = send(client, "GET", simple_url, headers={"Accept": f"{PEP691}, application/json;q=0.1"})
    if response.status_code >= 500 or response.status_code == 429:
        raise SourceUnavailable(f"GET {simple_url} answered {response.status_code}: {snippet(response.text)}")
    content_type = response.headers.get("content-type", "")
    if response.is_success and content_type.startswith(PEP691):
        history = parse_simple(name, parse_json(response, f"GET {simple_url}"), simple_url)
        if any(r.uploaded for r in history.releases.values()):
            return history
    json_url = f"{json_api_root(index_url)}/pypi/{name}/json"
    fallback = send(client, "GET", json_url)
    if fallback.status_code >= 500 or fallback.status_code == 429:
        raise SourceUnavailable(f"GET {json_url} answered {fallback.status_code}: {snippet(fallback.text)}")
    if not fallback.is_success:
        raise SourceError(
            f"{package}: the index has no JSON release data (GET {simple_url} -> {response.status_code} "
            f"{content_type or 'no content type'}; GET {json_url} -> {fallback.status_code})"
        )
    return parse_json_api(name, parse_json(fallback, f"GET {json_url}"), json_url)
