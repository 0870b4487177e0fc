"""Reading the package index for the plan: PEP 691 project pages and PEP 658 metadata, cached.

Which index: the caller's (`stack.index.url`, `--index`, `PIP_INDEX_URL`, pip's configuration; no
host is written here), or the one a lock file records for a package. A `404` means "not on this
index" and is remembered; `406`, `5xx`, `429` and connection errors are retried with backoff, then
the last good page is used (dated by when it was read) or the plan says "unknown (index unreachable
since ...)". Core metadata is immutable per file, so it is cached for good; when the index serves
no `.metadata` file, the wheel's `METADATA` is read with HTTP range requests (a wheel is a zip whose
`.dist-info` sits at the end), never by downloading the wheel.
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from monitor.stack.plan.model import CoreMetadata, IndexFile, IndexGap, Listing
from monitor.stack.plan.simple_api import ACCEPT, PEP691, ListingError, listing_doc, parse_listing, parse_metadata

MAX_METADATA_BYTES = 4 * 1024 * 1024
MAX_RANGE_BYTES = 16 * 1024 * 1024
"""Range reads of one wheel stop here: enough for a zip directory and METADATA, bounded for a bad server."""


@dataclass(frozen=True)
class CachedPage:
    status: str
    """ok, not_listed, not_json, or failing (never read successfully)."""
    fetched_at: datetime | None
    document: Any
    last_error: str | None = None
    failing_since: datetime | None = None


class IndexCache(Protocol):
    def get_page(self, index_url: str, name: str) -> CachedPage | None: ...

    def put_page(self, index_url: str, name: str, page: CachedPage, attempted_at: datetime) -> None: ...

    def get_metadata(self, url: str) -> CoreMetadata | None | bool:
        """The metadata, False when known absent, None when never read."""
        ...

    def put_metadata(self, url: str, meta: CoreMetadata | None, at: datetime) -> None: ...


class MemoryCache:
    """A cache for one `mlmon scan` run (and tests)."""

    def __init__(self) -> None:
        self.pages: dict[tuple[str, str], CachedPage] = {}
        self.meta: dict[str, CoreMetadata | None] = {}

    def get_page(self, index_url: str, name: str) -> CachedPage | None:
        return self.pages.get((index_url, name))

    def put_page(self, index_url: str, name: str, page: CachedPage, attempted_at: datetime) -> None:
        self.pages[(index_url, name)] = page

    def get_metadata(self, url: str) -> CoreMetadata | None | bool:
        if url not in self.meta:
            return None
        found = self.meta[url]
        return False if found is None else found

    def put_metadata(self, url: str, meta: CoreMetadata | None, at: datetime) -> None:
        self.meta[url] = meta


class _Unreachable(Exception):
    pass


class IndexClient:
    """An `IndexLookup` over HTTP with a cache; with `http=None` it answers from the cache only."""

    def __init__(
        self,
        http: httpx.Client | None,
        index_url: str | None,
        cache: IndexCache,
        now: datetime,
        *,
        max_age: timedelta = timedelta(hours=6),
        retries: int = 2,
        backoff: float = 0.5,
        no_index: str = "no package index configured",
    ) -> None:
        self.http = http
        self.index_url = index_url.rstrip("/") if index_url else None
        self.cache = cache
        self.now = now
        self.max_age = max_age
        self.retries = retries
        self.backoff = backoff
        self.no_index = no_index
        self._listings: dict[tuple[str, str], Listing | IndexGap] = {}
        self._down: dict[str, str] = {}
        """Indexes found unreachable in this run: not retried for every other package."""
        self.requests = 0

    # --- listings ---------------------------------------------------------------------------------

    def listing(self, name: str, index_url: str | None = None) -> Listing | IndexGap:
        base = (index_url or self.index_url or "").rstrip("/")
        if not base:
            return IndexGap("not_read", self.no_index)
        key = (base, name)
        if key not in self._listings:
            self._listings[key] = self._listing(base, name)
        return self._listings[key]

    def _listing(self, base: str, name: str) -> Listing | IndexGap:
        url = f"{base}/{name}/"
        cached = self.cache.get_page(base, name)
        fresh = cached is not None and cached.fetched_at is not None and self.now - cached.fetched_at < self.max_age
        if cached is not None and fresh:
            return self._from_cache(name, url, cached)
        if self.http is None:
            if cached is not None and cached.status != "failing":
                return self._from_cache(name, url, cached)
            if cached is not None:
                return IndexGap("unreachable", cached.last_error or "", cached.failing_since)
            return IndexGap("not_read", f"{url} has not been read yet")
        try:
            if base in self._down:
                raise _Unreachable(self._down[base])
            response = self._get(url, {"Accept": ACCEPT})
        except _Unreachable as exc:
            self._down.setdefault(base, str(exc))
            since = cached.failing_since if cached is not None and cached.failing_since else self.now
            stale = cached if cached is not None and cached.status != "failing" else None
            self.cache.put_page(
                base,
                name,
                CachedPage(
                    stale.status if stale else "failing",
                    stale.fetched_at if stale else None,
                    stale.document if stale else None,
                    str(exc),
                    since,
                ),
                self.now,
            )
            if stale is not None:
                return self._from_cache(name, url, stale)
            return IndexGap("unreachable", str(exc), since)
        if response.status_code == 404:
            self.cache.put_page(base, name, CachedPage("not_listed", self.now, None), self.now)
            return IndexGap("not_listed", f"GET {url} answered 404")
        content_type = response.headers.get("content-type", "")
        if not response.is_success or not content_type.startswith(PEP691):
            self.cache.put_page(base, name, CachedPage("not_json", self.now, None), self.now)
            return IndexGap(
                "not_json", f"GET {url} answered {response.status_code} {content_type or 'no content type'}"
            )
        try:
            listing = parse_listing(name, url, response.json(), self.now)
        except (ValueError, ListingError) as exc:
            return IndexGap("not_json", str(exc)[:300])
        self.cache.put_page(base, name, CachedPage("ok", self.now, listing_doc(listing)), self.now)
        return listing

    def _from_cache(self, name: str, url: str, cached: CachedPage) -> Listing | IndexGap:
        if cached.status == "ok":
            try:
                return parse_listing(name, url, cached.document, cached.fetched_at)
            except ListingError as exc:
                return IndexGap("not_json", str(exc)[:300])
        if cached.status == "not_listed":
            return IndexGap("not_listed", f"GET {url} answered 404")
        if cached.status == "not_json":
            return IndexGap("not_json", f"GET {url} answered no PEP 691 JSON")
        return IndexGap("unreachable", cached.last_error or "", cached.failing_since)

    def _get(self, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        assert self.http is not None
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                self.requests += 1
                response = self.http.get(url, headers=headers or {})
            except httpx.HTTPError as exc:
                last = f"GET {url}: {type(exc).__name__}: {exc}"
                continue
            if response.status_code >= 500 or response.status_code in (406, 429):
                last = f"GET {url} answered {response.status_code}"
                continue
            return response
        raise _Unreachable(last)

    # --- metadata ---------------------------------------------------------------------------------

    def metadata(self, file: IndexFile) -> CoreMetadata | None | IndexGap:
        cached = self.cache.get_metadata(file.url)
        if cached is False:
            return None
        if isinstance(cached, CoreMetadata):
            return cached
        if self.http is None:
            return IndexGap("not_read", f"metadata of {file.filename} has not been read yet")
        try:
            meta = self._fetch_metadata(file)
        except _Unreachable as exc:
            return IndexGap("unreachable", str(exc), self.now)
        self.cache.put_metadata(file.url, meta, self.now)
        return meta

    def _fetch_metadata(self, file: IndexFile) -> CoreMetadata | None:
        response = self._get(f"{file.url}.metadata")
        if response.is_success:
            body = response.content[:MAX_METADATA_BYTES]
            if _hash_ok(body, file.metadata_hash):
                return parse_metadata(body.decode("utf-8", "replace"))
        if not file.is_wheel:
            return None
        return self._metadata_from_wheel(file)

    def _metadata_from_wheel(self, file: IndexFile) -> CoreMetadata | None:
        reader = _RangeReader(self, file.url)
        try:
            if not reader.open():
                return None
            with zipfile.ZipFile(reader) as wheel:
                names = [n for n in wheel.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
                if not names:
                    return None
                with wheel.open(names[0]) as member:
                    return parse_metadata(member.read(MAX_METADATA_BYTES).decode("utf-8", "replace"))
        except (zipfile.BadZipFile, _TooMuch, OSError, EOFError):
            return None


def _hash_ok(body: bytes, hashes: Any) -> bool:
    if not hashes:
        return True
    wanted = hashes.get("sha256")
    return wanted is None or hashlib.sha256(body).hexdigest() == wanted


class _TooMuch(Exception):
    pass


class _RangeReader(io.RawIOBase):
    """A seekable view of a remote file over HTTP `Range` requests (what `zipfile` needs)."""

    def __init__(self, client: IndexClient, url: str) -> None:
        self.client = client
        self.url = url
        self.size = 0
        self.pos = 0
        self.fetched = 0

    def open(self) -> bool:
        response = self.client._get(self.url, {"Range": "bytes=-65536"})
        if response.status_code != 206:
            return False
        total = response.headers.get("content-range", "").rpartition("/")[2]
        if not total.isdigit():
            return False
        self.size = int(total)
        return True

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, size: int = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.pos + size)
        if end <= self.pos:
            return b""
        self.fetched += end - self.pos
        if self.fetched > MAX_RANGE_BYTES:
            raise _TooMuch(self.url)
        response = self.client._get(self.url, {"Range": f"bytes={self.pos}-{end - 1}"})
        if response.status_code != 206:
            raise OSError(f"GET {self.url} with Range answered {response.status_code}")
        data = response.content
        self.pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
