"""`mlmon report audit`: the stack audit report from the command line.

    mlmon report audit [--as-of DATE|TIME] [--since DATE|TIME] [--format json|csv|html]
                       [--what findings|packages|compliance|changes] [--project ID]... [--output FILE]

Exit status: 0 written; 1 the database is not ready; 2 a usage or input error (a bad date, an
`--as-of` before any history, an unknown project, an invalid configuration).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from monitor.cli import bootstrap
from monitor.core.clock import SystemClock
from monitor.core.errors import InvalidInput, NotFound
from monitor.reports.audit_loader import audit_report
from monitor.reports.render_csv import CSV_TABLES, render_csv
from monitor.reports.render_html import render_html
from monitor.reports.render_json import render_json
from monitor.stack.history import parse_moment

FORMATS = ("json", "csv", "html")


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_moment(value)
    except ValueError:
        bootstrap.fail(f"{option}: expected a date (2026-11-01, meaning 00:00 UTC) or an RFC 3339 time, got {value!r}")


def render(doc: dict[str, object], fmt: str, what: str) -> str:
    if fmt == "csv":
        return render_csv(doc, what)
    if fmt == "html":
        return render_html(doc)
    return render_json(doc, indent=True) + "\n"


@click.group()
def report() -> None:
    """Reports for auditors (see docs/reports.md)."""


@report.command("audit")
@click.option("--as-of", "as_of", help="the status at this date (00:00 UTC) or RFC 3339 time, replayed from history")
@click.option("--since", help="start of the period for fixed findings and the change log [default: 90 days before]")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True)
@click.option("--what", type=click.Choice(CSV_TABLES), help="CSV only: which table [default: findings]")
@click.option("--project", "projects", multiple=True, help="only this project (repeat for several)")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="write here instead of stdout")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), help="YAML file [env MLMON_CONFIG]")
@click.option("--database-url", help="SQLAlchemy URL [env MLMON_DATABASE_URL]")
def audit(
    as_of: str | None,
    since: str | None,
    fmt: str,
    what: str | None,
    projects: tuple[str, ...],
    output: str | None,
    config_path: str | None,
    database_url: str | None,
) -> None:
    """Stack audit report: packages, findings with SLA status, compliance, evidence, change log."""
    if what is not None and fmt != "csv":
        bootstrap.fail(f"--what chooses a CSV table; it does not apply to --format {fmt}")
    moment = _moment(as_of, "--as-of")
    start = _moment(since, "--since")
    settings, config = bootstrap.configuration(config_path)
    store = bootstrap.store(database_url or settings.database_url, empty="refuse")
    try:
        doc = audit_report(store, config, SystemClock().now(), as_of=moment, since=start, projects=projects or None)
    except NotFound as exc:
        bootstrap.fail(str(exc))
    except InvalidInput as exc:
        bootstrap.fail("; ".join(f"--{i.where.replace('_', '-')}: {i.message}" for i in exc.issues))
    finally:
        store.close()
    text = render(doc, fmt, what or "findings")
    if output is None:
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8", newline="")
    summary = doc["summary"]
    click.echo(
        f"audit report as of {doc['as_of']}: {summary['projects']} projects, {summary['findings']} findings, "
        f"SLA compliance {_rate(summary['compliance']['rate'])}" + (f"; written to {output}" if output else ""),
        err=True,
    )


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


COMMANDS: list[click.Command] = [report]
