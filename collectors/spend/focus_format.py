"""What kind of file a FOCUS export is, its header, and its bytes (gunzipped when needed)."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from collectors.spend.focus_rows import FocusFileError

_GZIP_MAGIC = b"\x1f\x8b"
HEADER_LIMIT = 1 << 20
"""Bytes a header line may take (a file without newlines is not read whole to find one)."""
_PARQUET_MAGIC = b"PAR1"


def detect_format(path: Path, configured: str) -> str:
    if configured != "auto":
        return configured
    with path.open("rb") as handle:
        head = handle.read(4)
    if head == _PARQUET_MAGIC or path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    return "csv"


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def csv_header(path: Path) -> list[str]:
    """Column names of a CSV file (gzipped or not), without a UTF-8 byte-order mark."""
    try:
        with gzip.open(path, "rb") if is_gzip(path) else path.open("rb") as raw:
            line = raw.readline(HEADER_LIMIT)
        header = next(csv.reader([line.decode("utf-8-sig")]), None)
    except UnicodeDecodeError:
        raise FocusFileError(str(path), "cannot decode the header: expected UTF-8 text", 1) from None
    except EOFError:
        # gzip's way of saying the file was cut short (click would print only "Aborted!")
        raise FocusFileError(str(path), "the compressed file is truncated: it ends before the header does") from None
    except (OSError, csv.Error) as exc:
        raise FocusFileError(str(path), f"cannot read the CSV header: {exc}") from None
    if not header:
        raise FocusFileError(str(path), "the file is empty: expected a CSV header of FOCUS columns")
    return [name.strip() for name in header]


def byte_source(path: Path) -> Any:
    """A pyarrow input stream of the file's bytes, gunzipped when it starts with gzip's magic."""
    import pyarrow as pa  # type: ignore[import-untyped]

    source: Any = pa.OSFile(str(path))
    return pa.CompressedInputStream(source, "gzip") if is_gzip(path) else source


@contextmanager
def text_rows(path: Path) -> Iterator[io.TextIOWrapper]:
    """The file as text, gunzipped when needed, without a byte-order mark (for the csv module)."""
    with gzip.open(path, "rb") if is_gzip(path) else path.open("rb") as raw:
        yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
