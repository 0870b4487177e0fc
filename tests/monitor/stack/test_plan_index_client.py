"""The plan's index client on bad answers: wrong documents, hash mismatches, HTML, 404 vs 5xx."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from monitor.stack.plan.index_client import IndexClient, MemoryCache
from monitor.stack.plan.model import IndexFile, IndexGap, Listing
from monitor.stack.plan.simple_api import PEP691, ListingError, parse_listing, parse_metadata
from tests.support.http_server import Answer, LocalHttpServer

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with LocalHttpServer() as s:
        yield s


def client(server: LocalHttpServer, http: httpx.Client) -> IndexClient:
    return IndexClient(http, server.url("/simple"), MemoryCache(), NOW, backoff=0.01)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "expected a JSON object"),
        ({"files": []}, "meta.api-version"),
        ({"meta": {"api-version": "2.0"}, "files": []}, "only major version 1"),
        ({"meta": {"api-version": "1.1"}, "files": {}}, "files: expected a list"),
        ({"meta": {"api-version": "1.1"}, "files": [{"url": "x"}]}, "files[0].filename"),
        ({"meta": {"api-version": "1.1"}, "files": [{"filename": "a-1.0.tar.gz"}]}, "files[0].url"),
    ],
)
def test_a_wrong_document_names_the_field(doc: object, field: str) -> None:
    with pytest.raises(ListingError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_listing("demo", "http://index.test/simple/demo/", doc)


def test_files_it_does_not_understand_are_skipped_and_urls_resolved() -> None:
    doc = {"meta": {"api-version": "1.1"}, "files": [
        {"filename": "demo-1.0.egg", "url": "demo-1.0.egg"},
        {"filename": "demo-1.0-py3-none-any.whl", "url": "../../files/demo-1.0-py3-none-any.whl", "yanked": "bad"},
        {"filename": "demo-1.1.tar.gz", "url": "https://files.test/demo-1.1.tar.gz", "core-metadata": {"sha256": "ab"}},
    ]}  # fmt: skip
    listing = parse_listing("Demo", "http://index.test/simple/demo/", doc)
    assert [f.filename for f in listing.files] == ["demo-1.0-py3-none-any.whl", "demo-1.1.tar.gz"]
    assert listing.files[0].url == "http://index.test/files/demo-1.0-py3-none-any.whl" and listing.files[0].yanked
    assert listing.files[1].metadata_hash == {"sha256": "ab"}
    assert [str(v) for v in listing.releases()] == ["1.1"]  # the yanked wheel does not count


def test_metadata_headers_only() -> None:
    meta = parse_metadata("Name: x\nRequires-Dist: torch (==2.5.1)\nRequires-Dist: numpy\n  ; extra == 'a'\n\nbody")
    assert meta.requires_dist == ("torch (==2.5.1)", "numpy ; extra == 'a'") and meta.requires_python is None


def test_404_is_not_listed_html_is_not_json_5xx_is_unreachable(server: LocalHttpServer) -> None:
    server.route("/simple/html/", Answer("<html></html>", headers={"Content-Type": "text/html"}))
    server.route("/simple/broken/", Answer(b"{", headers={"Content-Type": PEP691}))
    server.route("/simple/down/", Answer("no", status=503))
    with httpx.Client(timeout=5) as http:
        lookup = client(server, http)
        missing, html, broken = lookup.listing("missing"), lookup.listing("html"), lookup.listing("broken")
        assert isinstance(missing, IndexGap) and missing.kind == "not_listed"
        assert isinstance(html, IndexGap) and html.kind == "not_json" and "text/html" in html.detail
        assert isinstance(broken, IndexGap) and broken.kind == "not_json"
        down = lookup.listing("down")
        assert isinstance(down, IndexGap) and down.kind == "unreachable" and down.since == NOW
        assert len(server.requests("/simple/down/")) == 3  # retried twice
        assert down.describe().startswith("unknown (index unreachable since 2026-12-06 09:00:00 UTC: GET ")
        # once down, the index is not asked again in this run
        other = lookup.listing("other")
        assert isinstance(other, IndexGap) and other.kind == "unreachable" and not server.requests("/simple/other/")


def test_metadata_with_a_wrong_hash_is_not_trusted(server: LocalHttpServer) -> None:
    body = b"Metadata-Version: 2.1\nName: demo\nRequires-Dist: torch==2.5.1\n"
    server.route("/files/good.whl.metadata", Answer(body))
    server.route("/files/bad.whl.metadata", Answer(body))
    good = IndexFile("demo-1.0-py3-none-any.whl", server.url("/files/good.whl"), None,
                     metadata_hash={"sha256": hashlib.sha256(body).hexdigest()})  # fmt: skip
    bad = IndexFile("demo-1.0-py3-none-any.whl", server.url("/files/bad.whl"), None,
                    metadata_hash={"sha256": "0" * 64})  # fmt: skip
    with httpx.Client(timeout=5) as http:
        lookup = client(server, http)
        found = lookup.metadata(good)
        assert not isinstance(found, IndexGap) and found is not None and found.requires_dist == ("torch==2.5.1",)
        assert lookup.metadata(bad) is None  # sdist-like fallback: no wheel tags, nothing else to read
        assert lookup.metadata(bad) is None and len(server.requests("/files/bad.whl.metadata")) == 1  # cached


def test_a_listing_round_trips_through_the_cache_document() -> None:
    from monitor.stack.plan.simple_api import listing_doc

    doc = {"meta": {"api-version": "1.1", "_last-serial": 7}, "files": [
        {"filename": "demo-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", "url": "http://i.test/f.whl",
         "requires-python": ">=3.10"}]}  # fmt: skip
    first = parse_listing("demo", "http://i.test/simple/demo/", doc, NOW)
    again = parse_listing("demo", "http://i.test/simple/demo/", json.loads(json.dumps(listing_doc(first))), NOW)
    assert isinstance(again, Listing) and again.files == first.files and again.last_serial == 7
