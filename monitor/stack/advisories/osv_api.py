"""The live OSV API: `POST /v1/querybatch` to find the records of each package, `GET /v1/vulns/{id}`
for the full records.

Packages are queried by name only (no version): the API then lists every record of the package,
and matching is done here with the same rules as for the offline database. This keeps one matching
engine, and sidesteps how the service reads local labels such as `+cu121`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from monitor.core.errors import SourceError, SourceUnavailable
from monitor.http import HttpFactory, request_json
from monitor.stack.advisories.feed import Holdings
from monitor.stack.advisories.model import AdvisoryError, parse_time
from monitor.stack.advisories.offline import LoadResult, Rejected, parse_records

BATCH_SIZE = 1000
FETCH_WORKERS = 8
MAX_PAGES = 100


@dataclass
class Listing:
    """The record IDs (and their `modified` times) the API lists for each queried package."""

    ids: dict[str, datetime | None] = field(default_factory=dict)
    packages: dict[str, list[str]] = field(default_factory=dict)


def list_records(client: httpx.Client, packages: Iterable[str], ecosystem: str = "PyPI") -> Listing:
    """Every record ID the API has for each package (following each query's page tokens)."""
    names = sorted(set(packages))
    listing = Listing()
    pending: list[tuple[str, str | None]] = [(n, None) for n in names]
    pages = 0
    while pending:
        pages += 1
        if pages > MAX_PAGES * max(1, len(names) // BATCH_SIZE + 1):
            raise SourceError(f"OSV querybatch kept returning page tokens after {pages} requests; giving up")
        batch, pending = pending[:BATCH_SIZE], pending[BATCH_SIZE:]
        queries: list[dict[str, Any]] = []
        for name, token in batch:
            query: dict[str, Any] = {"package": {"name": name, "ecosystem": ecosystem}}
            if token:
                query["page_token"] = token
            queries.append(query)
        answer = request_json(client, "POST", "/v1/querybatch", json={"queries": queries})
        results = answer.get("results") if isinstance(answer, Mapping) else None
        if not isinstance(results, list) or len(results) != len(batch):
            raise SourceError(
                f"OSV querybatch answered {len(results) if isinstance(results, list) else 'no'} results "
                f"for {len(batch)} queries; expected one result per query"
            )
        for (name, _token), result in zip(batch, results, strict=True):
            if not isinstance(result, Mapping):
                raise SourceError(f"OSV querybatch result for {name} is not an object: {result!r}")
            for vuln in result.get("vulns") or []:
                if not isinstance(vuln, Mapping) or not isinstance(vuln.get("id"), str):
                    raise SourceError(f"OSV querybatch listed a record without an id for {name}: {vuln!r}")
                try:
                    modified = parse_time(vuln.get("modified"), f"querybatch {name} {vuln['id']}.modified")
                except AdvisoryError:
                    modified = None
                listing.ids[vuln["id"]] = modified
                listing.packages.setdefault(name, []).append(vuln["id"])
            token = result.get("next_page_token")
            if isinstance(token, str) and token:
                pending.append((name, token))
    return listing


def fetch_records(
    client: httpx.Client,
    ids: Iterable[str],
    progress: Callable[[int, int], None] | None = None,
    workers: int = FETCH_WORKERS,
) -> tuple[list[tuple[str, object]], list[tuple[str, str]]]:
    """The full record of each ID as (where, JSON object), and (where, why) for IDs the API refused.

    Records are fetched a few at a time (one client, shared connections). An unreachable API
    (SourceUnavailable) stops the fetch; one record the API answers with an error (a 404 for a
    record deleted since the listing) is only counted.
    """
    wanted = sorted(set(ids))
    out: list[tuple[str, object]] = []
    refused: list[tuple[str, str]] = []

    def one(ident: str) -> tuple[str, object]:
        return f"OSV API /v1/vulns/{ident}", request_json(client, "GET", f"/v1/vulns/{ident}")

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="osv-fetch") as pool:
        futures = {pool.submit(one, ident): ident for ident in wanted}
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                try:
                    out.append(future.result())
                except SourceUnavailable:
                    raise
                except SourceError as exc:
                    refused.append((f"OSV API /v1/vulns/{futures[future]}", str(exc)))
                if progress is not None:
                    progress(done, len(wanted))
        except SourceUnavailable:
            for future in futures:
                future.cancel()
            raise
    out.sort(key=lambda item: item[0])
    return out, refused


@dataclass(frozen=True)
class OsvApiFeed:
    """OSV's API: the IDs of every installed package's advisories, then only the records that are
    new or modified since the stored ones."""

    url: str
    http: HttpFactory
    kind: str = "osv-api"

    @property
    def location(self) -> str:
        return self.url

    def fetch(self, holdings: Holdings, progress: Callable[[int, int], None] | None) -> LoadResult:
        known = holdings.modified
        with self.http.client(base_url=self.url) as client:
            listing = list_records(client, holdings.packages)
            wanted = [i for i, when in listing.ids.items() if _newer(when, known.get(i, _ABSENT))]
            docs, refused = fetch_records(client, wanted, progress)
        parsed = parse_records(docs)
        return LoadResult(parsed.advisories, [*parsed.rejected, *(Rejected(where, why) for where, why in refused)])


_ABSENT = object()


def _newer(listed: datetime | None, held: object) -> bool:
    """Fetch a record not held, or listed without a date, or modified after the one held."""
    if held is _ABSENT or listed is None:
        return True
    return not isinstance(held, datetime) or listed > held
