"""Name the row of an error pyarrow reports without one (a bad number, a ragged record)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from collectors.spend.focus_format import byte_source, text_rows
from collectors.spend.focus_rows import NULLS, FocusFileError

_ARROW_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (\w+): invalid value '(.*)'", re.S
)
_ARROW_COLUMNS = re.compile(r"Expected \d+ columns, got \d+")


def located(path: Path, header: list[str], exc: Exception, block_size: int) -> FocusFileError:
    """Turn pyarrow's parse and conversion errors into ones naming the row (and column)."""
    if _ARROW_COLUMNS.search(str(exc)):
        return ragged_row(path, len(header))
    found = _ARROW_CONVERSION.search(str(exc))
    if not found:
        return FocusFileError(str(path), f"cannot parse the file: {exc}")
    index, value = int(found.group(1)), found.group(3)
    column = header[index] if index < len(header) else f"#{index}"
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.csv as pcsv  # type: ignore[import-untyped]

    reader = pcsv.open_csv(
        byte_source(path),
        read_options=pcsv.ReadOptions(block_size=block_size, use_threads=False, column_names=header, skip_rows=1),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            include_columns=[column],
            column_types={column: pa.string()},
            null_values=list(NULLS),
            strings_can_be_null=True,
        ),
    )
    offset = 0
    for batch in reader:
        for row, text in enumerate(batch.column(0).to_pylist()):
            if text is None:
                continue
            try:
                float(text)
            except ValueError:
                return FocusFileError(str(path), f"expected a number, got {text!r}", offset + row + 1, column)
        offset += batch.num_rows
    return FocusFileError(str(path), f"expected a number, got {value!r}", None, column)


def ragged_row(path: Path, width: int) -> FocusFileError:
    """The first record with more or fewer fields than the header (read again with the csv module)."""
    with text_rows(path) as text:
        reader = csv.reader(text)
        next(reader, None)
        for row, record in enumerate(reader, start=1):
            if len(record) != width:
                return FocusFileError(
                    str(path), f"expected {width} fields as in the header, got {len(record)} (an unquoted comma?)", row
                )
    return FocusFileError(str(path), f"a record does not have the header's {width} fields")
