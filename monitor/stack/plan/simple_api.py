"""Reading what an index serves: PEP 691 JSON project pages and core metadata files (PEP 658).

Pure: the client hands over the decoded document or the metadata text. A project page is
validated strictly enough that a wrong document is an error naming the field, and leniently
enough that files this code does not understand (eggs, odd names) are skipped, not fatal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from email.parser import HeaderParser
from typing import Any
from urllib.parse import urljoin

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from monitor.stack.plan.model import CoreMetadata, IndexFile, Listing

PEP691 = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{PEP691}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
_MAJOR = re.compile(r"^(\d+)\.")


class ListingError(ValueError):
    """A document that is not a PEP 691 project page (names the URL and the field)."""


def project_url(index_url: str, name: str) -> str:
    return f"{index_url.rstrip('/')}/{canonicalize_name(name)}/"


def parse_listing(name: str, url: str, doc: object, fetched_at: datetime | None = None) -> Listing:
    if not isinstance(doc, Mapping):
        raise ListingError(f"{url}: expected a JSON object (PEP 691 project page)")
    meta = doc.get("meta")
    version = meta.get("api-version") if isinstance(meta, Mapping) else None
    if not isinstance(version, str) or not _MAJOR.match(version):
        raise ListingError(f"{url}: meta.api-version: expected a string such as '1.1', got {version!r}")
    if int(_MAJOR.match(version).group(1)) > 1:  # type: ignore[union-attr]
        raise ListingError(f"{url}: meta.api-version {version}: only major version 1 is understood")
    files = doc.get("files")
    if not isinstance(files, list):
        raise ListingError(f"{url}: files: expected a list")
    parsed = []
    for number, item in enumerate(files):
        if not isinstance(item, Mapping) or not isinstance(item.get("filename"), str):
            raise ListingError(f"{url}: files[{number}].filename: expected a string")
        if not isinstance(item.get("url"), str):
            raise ListingError(f"{url}: files[{number}].url: expected a string")
        found = parse_file(item, url)
        if found is not None:
            parsed.append(found)
    serial = meta.get("_last-serial") if isinstance(meta, Mapping) else None
    return Listing(
        str(canonicalize_name(name)),
        url,
        tuple(parsed),
        fetched_at,
        serial if isinstance(serial, int) else None,
    )


def parse_file(item: Mapping[str, Any], page_url: str) -> IndexFile | None:
    filename = item["filename"]
    tags: frozenset[Any] = frozenset()
    try:
        _, version, _, wheel_tags = parse_wheel_filename(filename)
        tags = frozenset(wheel_tags)
    except InvalidWheelFilename:
        try:
            _, version = parse_sdist_filename(filename)
        except InvalidSdistFilename:
            return None
    core = item.get("core-metadata", item.get("dist-info-metadata"))
    hashes = core if isinstance(core, Mapping) else None
    yanked = item.get("yanked", False)
    requires = item.get("requires-python")
    return IndexFile(
        filename=filename,
        url=urljoin(page_url, item["url"]),
        version=version if isinstance(version, Version) else None,
        tags=tags,
        requires_python=requires if isinstance(requires, str) and requires.strip() else None,
        yanked=yanked is not False and yanked is not None,
        metadata_hash={str(k): str(v) for k, v in hashes.items()} if hashes else None,
    )


def listing_doc(listing: Listing) -> dict[str, Any]:
    """A compact PEP 691 document of a listing (what the store keeps)."""
    return {
        "meta": {"api-version": "1.1", "_last-serial": listing.last_serial},
        "name": listing.name,
        "files": [
            {
                "filename": f.filename,
                "url": f.url,
                "requires-python": f.requires_python,
                "yanked": f.yanked,
                **({"core-metadata": dict(f.metadata_hash)} if f.metadata_hash else {}),
            }
            for f in listing.files
        ],
    }


def parse_metadata(text: str) -> CoreMetadata:
    """Requires-Dist and Requires-Python of a METADATA file (RFC 822 headers)."""
    headers = HeaderParser().parsestr(text, headersonly=True)
    requires = tuple(" ".join(v.split()) for v in headers.get_all("Requires-Dist") or ())
    python = headers.get("Requires-Python")
    return CoreMetadata(requires, python.strip() if python and python.strip() else None)
