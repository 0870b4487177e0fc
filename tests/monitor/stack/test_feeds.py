"""Advisory feeds (offline directory, all.zip, the OSV API over HTTP) and release histories from a
PEP 691 index (with the JSON API fallback), both served from the real data."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from monitor.core.errors import SourceError, SourceUnavailable
from monitor.http import HttpFactory
from monitor.stack.advisories.offline import OfflineSourceError, load_offline
from monitor.stack.advisories.osv_api import fetch_records, list_records
from monitor.stack.package_index import configured_index, fetch_history, pip_default_index
from monitor.stack.releases import ReleaseHistory, staleness
from monitor.stack.scan import load_advisories
from monitor.stack.store import StackStore
from monitor.stack.sync import advisory_index
from monitor.stack.tables import stack_advisories, stack_advisory_revisions
from monitor.store.db import make_engine
from tests.monitor.stack.support import OsvApi, PackageIndex
from tests.support.http_server import Answer, LocalHttpServer
from tests.support.peers import free_port

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_offline_directory_and_zip_count_bad_records_and_keep_the_rest(osv_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "osv"
    shutil.copytree(osv_dir, copy)
    (copy / "PyPI" / "torch" / "BROKEN-1.json").write_text('{"id": "BROKEN-1", "modified": ')
    (copy / "PyPI" / "torch" / "BROKEN-2.json").write_text(json.dumps({"id": "BROKEN-2", "affected": []}))
    (copy / "PyPI" / "torch" / "BROKEN-3.json").write_bytes(b"\xff\xfe")
    done: list[tuple[int, int]] = []
    loaded = load_offline(copy, lambda n, total: done.append((n, total)))
    assert len(loaded.advisories) == 159 and len(loaded.rejected) == 3
    reasons = {Path(r.where.split(":")[0]).name: r.reason for r in loaded.rejected}
    assert "invalid JSON" in reasons["BROKEN-1.json"]
    assert "modified: required timestamp is missing" in reasons["BROKEN-2.json"]
    assert "invalid JSON at line 1 column 1" in reasons["BROKEN-3.json"]
    assert reasons["BROKEN-1.json"].startswith("invalid JSON at line 1 column 32")
    assert done[-1] == (162, 162)
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(copy.rglob("*.json")):
            zf.write(path, path.name)
    zipped = load_offline(archive)
    assert len(zipped.advisories) == 159 and len(zipped.rejected) == 3
    assert all("all.zip!" in r.where for r in zipped.rejected)
    with pytest.raises(OfflineSourceError, match="no such file"):
        load_offline(tmp_path / "nowhere")
    (tmp_path / "not.zip").write_text("x")
    with pytest.raises(OfflineSourceError, match="expected a directory"):
        load_offline(tmp_path / "not.zip")


def test_osv_api_lists_every_page_and_fetches_records(osv_server: OsvApi, osv_docs: list[dict[str, Any]]) -> None:
    expected_torch = {d["id"] for d in osv_docs if any(a["package"]["name"] == "torch" for a in d.get("affected", []))}
    with HttpFactory(timeout=10).client(base_url=osv_server.server.url("")) as client:
        listing = list_records(client, ["torch", "numpy", "no-such-package"])
        assert set(listing.packages["torch"]) == expected_torch
        assert len(listing.packages["numpy"]) == 8 and "no-such-package" not in listing.packages
        pages = osv_server.server.requests("/v1/querybatch")
        assert len(pages) >= 6  # 37 torch records at 7 per page
        assert all("version" not in q for s in pages for q in json.loads(s.body)["queries"])
        docs, refused = fetch_records(client, ["PYSEC-2025-41", "GHSA-does-not-exist"])
    assert [where for where, _ in docs] == ["OSV API /v1/vulns/PYSEC-2025-41"]
    assert refused and "404" in refused[0][1]


def test_scan_loader_from_the_api_equals_the_offline_database(osv_server: OsvApi, osv_dir: Path) -> None:
    live = load_advisories(osv_server.server.url(""), ["torch", "pillow"], HttpFactory(timeout=10))
    offline = load_offline(osv_dir)
    wanted = {a.id for a in offline.advisories if a.packages() & {"torch", "pillow"}}
    assert {a.id for a in live.advisories} == wanted and live.kind == "osv-api" and not live.rejected


def test_unreachable_osv_api() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with HttpFactory(timeout=2).client(base_url=closed) as client, pytest.raises(SourceUnavailable, match="querybatch"):
        list_records(client, ["torch"])
    with LocalHttpServer() as server:
        server.route("/v1/querybatch", Answer({"results": []}))
        with (
            HttpFactory(timeout=2).client(base_url=server.url("")) as client,
            pytest.raises(SourceError, match="one result per query"),
        ):
            list_records(client, ["torch"])


def test_which_index_pip_uses() -> None:
    env = {"PIP_INDEX_URL": "https://env.example/simple/"}
    config = {
        "global.index-url": "https://global.example/simple",
        "install.index-url": "https://install.example/simple",
    }
    assert configured_index(env, "https://conf.example/simple", config).url == "https://conf.example/simple"
    assert configured_index(env, None, config).url == "https://env.example/simple"
    chosen = configured_index({}, None, config)
    assert (chosen.url, chosen.origin) == ("https://install.example/simple", "pip config install.index-url")
    assert (
        configured_index({}, None, {"global.index-url": "https://g.example/simple"}).url == "https://g.example/simple"
    )
    default = configured_index({}, None, {})
    assert default.url == pip_default_index().rstrip("/") and default.origin == "pip's default index"


def test_release_history_from_pep691_and_json_fallback(index_server: PackageIndex, releases: dict[str, Any]) -> None:
    with HttpFactory(timeout=10).client() as client:
        history = fetch_history(client, index_server.url, "Torch")
    assert set(history.releases) == set(releases) and len(history.releases) == 52
    assert history.source.endswith("/simple/torch/")
    assert history.releases["2.15.0"].uploaded == datetime(2026, 10, 28, 15, 16, 25, tzinfo=UTC)
    assert history.releases["2.15.0"].requires_python == ">=3.11"
    with LocalHttpServer() as server:
        index = PackageIndex(server, {"torch": releases}, pep691=False)
        with HttpFactory(timeout=10).client() as client:
            fallback = fetch_history(client, index.url, "torch")
            assert fallback.source.endswith("/pypi/torch/json") and set(fallback.releases) == set(releases)
            with pytest.raises(SourceError, match="no JSON release data"):
                fetch_history(client, index.url, "no-such-project")
        server.route("/simple/torch/", Answer("busy", status=503))
        with HttpFactory(timeout=10).client() as client, pytest.raises(SourceUnavailable, match="503"):
            fetch_history(client, index.url, "torch")


STALENESS = [
    # installed, minors behind, first newer release, newer releases, minor still patched, latest in minor
    ("2.15.0", 0, None, 0, True, "2.15.0"),
    ("2.14.1", 1, "2.15.0", 1, False, "2.14.1"),
    ("2.14.0", 1, "2.14.1", 2, False, "2.14.1"),
    ("2.13.0+cpu", 2, "2.14.0", 3, False, "2.13.0"),
    ("2.6.0rc1", 9, "2.6.0", 14, False, "2.6.0"),  # the rc is not in the index's history
    ("2.5.1+cu121", 10, "2.6.0", 14, False, "2.5.1"),
    ("1.13.1", 16, "2.0.0", 28, False, "1.13.1"),
]


@pytest.mark.parametrize(("installed", "minors", "first", "newer", "supported", "latest_in_minor"), STALENESS)
def test_staleness_over_torch_history(
    releases: dict[str, Any], installed: str, minors: int, first: str | None, newer: int, supported: bool,
    latest_in_minor: str,
) -> None:  # fmt: skip
    history = ReleaseHistory.from_doc("torch", releases)
    found = staleness(history, installed)
    assert found is not None
    assert (found.latest, found.minors_behind, found.first_newer, found.newer_releases) == (
        "2.15.0",
        minors,
        first,
        newer,
    )
    assert found.minor_supported is supported and found.latest_in_minor == latest_in_minor
    if first is None:
        assert found.behind_since is None and found.behind_seconds(NOW) == 0
    else:
        uploaded = datetime.fromisoformat(releases[first]["upload_time"])
        assert found.behind_since == uploaded and found.behind_seconds(NOW) == (NOW - uploaded).total_seconds()
    assert found.installed_known is (installed != "2.6.0rc1") and not found.installed_yanked


def test_yanked_and_unknown_versions(releases: dict[str, Any]) -> None:
    doc = {**releases, "2.14.0": {**releases["2.14.0"], "yanked": True, "yanked_reason": "broken CUDA wheels"},
           "2.16.0rc1": {"upload_time": "2026-11-10T00:00:00Z", "yanked": False}}  # fmt: skip
    history = ReleaseHistory.from_doc("torch", doc)
    found = staleness(history, "2.14.0")
    assert found is not None and found.installed_yanked and found.yanked_reason == "broken CUDA wheels"
    assert found.yanked_versions == ("2.14.0",) and found.latest == "2.15.0"  # pre-releases never count as latest
    private = staleness(history, "2.12.5")
    assert private is not None and not private.installed_known and private.first_newer == "2.13.0"
    assert staleness(history, "not-a-version") is None
    other = staleness(ReleaseHistory.from_doc("numpy", {"1.0": {"upload_time": None}}), "0.9")
    assert other is not None and other.minor_supported is None


def test_the_compiled_index_is_not_reused_when_revision_numbers_repeat(db_url: str, osv_dir: Path) -> None:
    """A database emptied or restored from a backup numbers its revisions from 1 again: the
    process-wide index cache must notice that revision 1 now holds other records."""
    loaded = load_offline(osv_dir).advisories
    torch = [a for a in loaded if any(x.name == "torch" for x in a.affected)]
    pillow = [a for a in loaded if any(x.name == "pillow" for x in a.affected)]
    engine = make_engine(db_url)
    try:
        stack = StackStore(engine)
        first = stack.import_advisories(torch, feed="import", source="torch", now=NOW)
        before = advisory_index(stack)
        assert before is not None and "torch" in before.packages and "pillow" not in before.packages
        with engine.begin() as conn:
            conn.execute(delete(stack_advisories))
            conn.execute(delete(stack_advisory_revisions))
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ALTER SEQUENCE stack_advisory_revisions_id_seq RESTART WITH 1")
        again = stack.import_advisories(pillow, feed="import", source="pillow", now=datetime(2026, 11, 21, tzinfo=UTC))
        assert again.revision == first.revision  # the number repeats ...
        after = advisory_index(stack)
        assert after is not None and "pillow" in after.packages and "torch" not in after.packages  # ... the index moves
    finally:
        engine.dispose()
