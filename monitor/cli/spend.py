"""`mlmon` subcommands of the spend family.

    mlmon spend status [--project ID] [--check] [--json]     budgets, spend, forecasts (from the store)
    mlmon spend read-focus FILE... --tag ml-project [--json]  attribute FOCUS files without storing them

Exit status: 0 ok; 1 `--check` found a budget reached (actual or forecast); 2 a usage or input
error (an unreadable configuration, a FOCUS file that is not valid FOCUS: file, row and column).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import click

from collectors.base import SourceError
from collectors.spend.focus_params import FocusParams
from collectors.spend.focus_reader import FocusFileError, duckdb_missing, read_focus_file
from monitor.cli import bootstrap
from monitor.spend.report import days_needed, load
from monitor.spend.series import ATTRIBUTED, GPU_USAGE, ROWS, zone
from monitor.spend.views import project_out


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())


def unmigrated(url: str) -> str | None:
    """Why the database cannot be read yet (missing or not migrated), or None. A SQLite file that
    does not exist is never created by asking."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from monitor.store import migrate
    from monitor.store.db import make_engine

    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file not in (None, "", ":memory:") and not Path(str(file)).exists():
        return f"no database at {parsed.database}: run `mlmon migrate` first (or set MLMON_DATABASE_URL)"
    engine = make_engine(url)
    try:
        current, head = migrate.current_revision(engine), migrate.head_revision(engine)
    except SQLAlchemyError as exc:
        return f"cannot read the database {shown}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    finally:
        engine.dispose()
    if current != head:
        state = "not migrated" if current is None else f"at revision {current}, not {head}"
        return f"the database {shown} is {state}: run `mlmon migrate` first"
    return None


@click.group("spend")
def spend() -> None:
    """GPU spend, budgets and forecasts."""


@spend.command("status")
@click.option("--config", "-c", type=click.Path(dir_okay=False), help="YAML file [env MLMON_CONFIG]")
@click.option("--database-url", help="SQLAlchemy URL [env MLMON_DATABASE_URL]")
@click.option("--project", "project_id", help="only this project")
@click.option("--check", is_flag=True, help="exit 1 when a budget threshold of 100% or more is reached")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def status(config: str | None, database_url: str | None, project_id: str | None, check: bool, as_json: bool) -> None:
    """Each project's budget period: spent, share of the budget, forecast with its interval."""
    chosen = bootstrap.settings(config, database_url)
    problem = unmigrated(chosen.database_url)
    if problem:
        bootstrap.fail(problem)
    runtime = bootstrap.runtime(chosen, prepared=False)
    try:
        cfg = runtime.config
        ids = [p.id for p in cfg.projects]
        if project_id is not None:
            if project_id not in ids:
                bootstrap.fail(f"unknown project {project_id!r}")
            ids = [project_id]
        now = runtime.clock.now()
        data = load(runtime.store, cfg, ids, now, days_needed(cfg, now))
        shown = [project_out(data[p], now) for p in ids]
    finally:
        runtime.store.close()
    over = [
        p.project
        for p in shown
        if p.budget and any(t.crossed and t.amount >= p.budget.amount for t in p.budget.thresholds)
    ]
    if as_json:
        click.echo(json.dumps([p.model_dump(mode="json") for p in shown], indent=2))
    else:
        rows = []
        for p in shown:
            b = p.budget
            if b is None:
                rows.append((p.project, "-", "-", "-", "-", "no budget", "-", "; ".join(p.problems)))
                continue
            f = b.forecast
            outlook = (
                f"{f.point:,.2f} ({f.lower:,.2f}-{f.upper:,.2f})"
                if f.available and f.point is not None and f.lower is not None and f.upper is not None
                else f"none: {f.reason}"
            )
            rows.append(
                (
                    p.project,
                    b.period.label,
                    f"{b.spent:,.2f} {b.currency}",
                    f"{b.amount:,.2f}",
                    f"{b.used:.1%}",
                    outlook,
                    str(b.data_through or "-"),
                    "; ".join(b.problems),
                )
            )
        _table(
            ("PROJECT", "PERIOD", "SPENT", "BUDGET", "USED", "FORECAST (INTERVAL)", "DATA THROUGH", "PROBLEMS"), rows
        )
    if check and over:
        click.echo(f"budget reached: {', '.join(over)}", err=True)
        sys.exit(1)


@spend.command("read-focus")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--tag", default="ml-project", show_default=True, help="the tag naming the project")
@click.option("--timezone", default="UTC", show_default=True, help="days are cut at midnight here")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def read_focus(files: tuple[str, ...], tag: str, timezone: str, as_json: bool) -> None:
    """Read FOCUS files and show what each project would be attributed (nothing is stored)."""
    missing = duckdb_missing()
    if missing:
        bootstrap.fail(missing)
    try:
        params = FocusParams.model_validate({"path": files[0], "attribution": [{"tag": tag}], "timezone": timezone})
        tz = zone(timezone)
    except ValueError as exc:
        bootstrap.fail(f"invalid option: {exc}")
    per_project: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    currency: str | None = None
    for name in files:
        try:
            aggregate = read_focus_file(Path(name), params, tz, (currency, "the files before") if currency else None)
        except (FocusFileError, SourceError) as exc:
            bootstrap.fail(str(exc))
        currency = currency or aggregate.currency
        for (metric, labels), per_day in aggregate.totals.values.items():
            label_map = dict(labels)
            project = label_map[ATTRIBUTED]
            total = sum(per_day.values())
            if metric == ROWS:
                per_project[project]["rows"] += total
            elif metric == GPU_USAGE:
                per_project[project]["gpu_hours"] += total / 3600
            elif label_map.get("basis") == "billed":
                per_project[project]["billed"] += total
                if label_map.get("scope") == "gpu":
                    per_project[project]["gpu_billed"] += total
            else:
                per_project[project]["effective"] += total
    if as_json:
        click.echo(json.dumps({"currency": currency, "projects": per_project}, indent=2, sort_keys=True))
        return
    rows = [
        (
            name,
            f"{v['rows']:,.0f}",
            f"{v['billed']:,.2f}",
            f"{v['effective']:,.2f}",
            f"{v['gpu_billed']:,.2f}",
            f"{v['gpu_hours']:,.2f}",
        )
        for name, v in sorted(per_project.items(), key=lambda item: -item[1]["billed"])
    ]
    click.echo(f"currency: {currency}")
    _table(("PROJECT", "ROWS", "BILLED", "EFFECTIVE", "GPU BILLED", "GPU HOURS"), rows)


COMMANDS: list[click.Command] = [spend]
