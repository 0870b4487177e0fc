"""`mlmon` subcommands of the quality family.

    mlmon quality drift REFERENCE.csv CURRENT.csv [--columns a,b] [--p-value 0.05 (0: off)] [--json]

compares two CSV files column by column with the statistics and default thresholds of the
`distribution` rule (no database, no configuration). Exit status: 0 no column drifts, 1 some
column drifts, 2 the input cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from monitor.quality.drift import DEFAULT_P_VALUE, Thresholds
from monitor.quality.offline import TableError, compare_tables, read_csv


@click.group(name="quality")
def quality() -> None:
    """Model quality: drift between datasets."""


def _off_or(value: float) -> float | None:
    return None if value <= 0 else value


@quality.command()
@click.argument("reference", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("current", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--columns", help="comma-separated columns to compare (default: every column in both files)")
@click.option("--bins", type=click.IntRange(2, 100), default=10, show_default=True, help="reference bins (PSI, JS)")
@click.option("--wasserstein", type=float, default=0.1, show_default=True, help="threshold; 0 turns it off")
@click.option("--psi", type=float, default=0.1, show_default=True, help="threshold; 0 turns it off")
@click.option("--js", "jensen_shannon", type=float, default=0.1, show_default=True, help="threshold; 0 turns it off")
@click.option(
    "--p-value",
    type=float,
    default=DEFAULT_P_VALUE,
    show_default=True,
    help="also require a corrected KS / chi-square p-value below this; 0 judges by effect sizes alone",
)
@click.option(
    "--correction",
    type=click.Choice(["holm", "bonferroni", "benjamini_hochberg", "none"]),
    default="benjamini_hochberg",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def drift(
    reference: Path,
    current: Path,
    columns: str | None,
    bins: int,
    wasserstein: float,
    psi: float,
    jensen_shannon: float,
    p_value: float,
    correction: str,
    as_json: bool,
) -> None:
    """Compare CURRENT with REFERENCE (CSV files with a header row), column by column."""
    thresholds = Thresholds(_off_or(psi), _off_or(jensen_shannon), _off_or(wasserstein), _off_or(p_value))
    if thresholds.psi is None and thresholds.jensen_shannon is None and thresholds.wasserstein is None:
        click.echo("every effect size is off: keep at least one threshold above 0", err=True)
        sys.exit(2)
    try:
        verdicts = compare_tables(
            read_csv(reference),
            read_csv(current),
            thresholds,
            correction,
            bins,
            [c.strip() for c in columns.split(",")] if columns else None,
        )
    except TableError as exc:
        click.echo(f"mlmon quality drift: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps([
            {"column": v.column, "kind": v.drift.kind, "n": v.drift.n, "reference_n": v.drift.reference_n,
             "test": v.drift.test, "statistics": v.drift.statistics(), "p_value_adjusted": v.p_adjusted,
             "exceeded": v.exceeded, "drift": v.drifting}
            for v in verdicts
        ], indent=2))  # fmt: skip
    else:
        header = ("COLUMN", "KIND", "N", "WASSERSTEIN", "PSI", "JS", "P_VALUE", "DRIFT")
        rows = [
            (
                v.column,
                v.drift.kind,
                str(v.drift.n),
                _num(v.drift.wasserstein),
                _num(v.drift.psi),
                _num(v.drift.jensen_shannon),
                _num(v.p_adjusted if v.p_adjusted is not None else v.drift.p_value, 3),
                ("yes: " + ", ".join(v.exceeded)) if v.drifting else "no",
            )  # fmt: skip
            for v in verdicts
        ]
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    sys.exit(1 if any(v.drifting for v in verdicts) else 0)


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


COMMANDS: list[click.Command] = [quality]
