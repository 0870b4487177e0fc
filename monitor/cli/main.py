"""The `mlmon` command line: serve, worker, migrate, check-config, collect.

Exit status: 0 success; 1 a failed check or source; 2 a usage or input error.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from monitor import __version__
from monitor.cli import auth as auth_commands
from monitor.cli import bootstrap
from monitor.cli import export as export_commands
from monitor.cli import quality as quality_commands
from monitor.cli import reports as report_commands
from monitor.cli import spend as spend_commands
from monitor.cli import stack as stack_commands
from monitor.config.settings import Settings
from monitor.core.errors import ConfigError
from monitor.logs import configure
from monitor.runtime import Runtime
from monitor.services import Services, build_engine

config_option = click.option("--config", "-c", type=click.Path(dir_okay=False), help="YAML file [env MLMON_CONFIG]")
db_option = click.option("--database-url", help="SQLAlchemy URL [env MLMON_DATABASE_URL]")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlmon")
def main() -> None:
    """mlmon: model quality, GPU spend and PyTorch stack health for every ML project."""


@main.command()
@config_option
@db_option
@click.option("--listen", help="host:port [env MLMON_LISTEN, default 127.0.0.1:8000]")
@click.option("--no-scheduler", is_flag=True, help="serve the API only (web replicas beside a `worker`)")
def serve(config: str | None, database_url: str | None, listen: str | None, no_scheduler: bool) -> None:
    """Run the API and (unless --no-scheduler) the scheduler in one process."""
    settings = bootstrap.settings(config, database_url, listen)
    bootstrap.publish_listen(settings)
    configure(settings.log_level)
    run_server(settings, bootstrap.runtime(settings), no_scheduler=no_scheduler)


def run_server(
    settings: Settings,
    runtime: Runtime,
    *,
    no_scheduler: bool = False,
    routers: Sequence[Any] = (),
    background: Sequence[Any] = (),
) -> None:
    """Serve `runtime` until SIGTERM/SIGINT; `routers` are added to the app, `background` objects
    (with start() and stop()) run beside the scheduler."""
    import uvicorn

    from monitor.api.app import create_app

    engine = build_engine(runtime)
    services = None if no_scheduler else Services.build(runtime, engine)
    app = create_app(runtime)
    for router in routers:
        app.include_router(router)

    class QuiescingServer(uvicorn.Server):
        """uvicorn takes SIGTERM over while it runs and drains connections before returning; the
        scheduler must not start source runs meanwhile, so it is quiesced at the signal itself."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            if services is not None:
                services.quiesce()
            super().handle_exit(sig, frame)

    server = QuiescingServer(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            log_level=settings.log_level,
            access_log=False,
        )
    )
    _on_sighup(lambda: runtime.reload(actor="SIGHUP"))
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down; turning them into SystemExit lets the
    # `finally` below stop the loops, the scheduler and the store cleanly instead of dying mid-send.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    if services is not None:
        services.start()
    for job in background:
        job.start()
    try:
        server.run()
    finally:
        for job in background:
            job.stop()
        if services is not None:
            services.stop()
        runtime.store.close()


@main.command()
@config_option
@db_option
@click.option(
    "--metrics-listen",
    help="host:port to serve this worker's own /metrics on (rule evaluation, notification delivery)",
)
def worker(config: str | None, database_url: str | None, metrics_listen: str | None) -> None:
    """Run only the scheduler. Several workers elect one leader; the others stand by."""
    settings = bootstrap.settings(config, database_url)
    bootstrap.publish_listen(settings)
    configure(settings.log_level)
    runtime = bootstrap.runtime(settings)
    if metrics_listen:
        from prometheus_client import start_http_server

        host, _, port = metrics_listen.rpartition(":")
        if not host or not port.isdigit():
            bootstrap.fail(f"--metrics-listen: expected host:port, got {metrics_listen!r}", 2)
        start_http_server(int(port), addr=host, registry=runtime.metrics)
    services = Services.build(runtime)
    stop = threading.Event()
    _on_sighup(lambda: runtime.reload(actor="SIGHUP"))
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    services.start()
    click.echo(f"mlmon worker running ({len(runtime.plans)} sources); SIGTERM stops it", err=True)
    stop.wait()
    services.stop()
    runtime.store.close()


@main.command()
@db_option
@click.option("--revision", default="head", show_default=True, help="target revision")
def migrate(database_url: str | None, revision: str) -> None:
    """Bring the database schema up to date (Alembic)."""
    from monitor.store import migrate as migrations
    from monitor.store.db import make_engine

    settings = bootstrap.settings(None, database_url)
    configure(settings.log_level)
    engine = make_engine(settings.database_url)
    try:
        before = migrations.current_revision(engine)
        migrations.upgrade(engine, revision)
        after = migrations.current_revision(engine)
    except Exception as exc:
        bootstrap.fail(f"migration failed: {exc}", 1)
    finally:
        engine.dispose()
    click.echo(f"database at revision {after} (was {before or 'empty'})")


@main.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--allow-empty", is_flag=True, help="accept a configuration without projects")
def check_config(file: str, allow_empty: bool) -> None:
    """Validate a configuration file; print every problem with its line. Variables named by
    `*_env` keys that are not set are warnings."""
    import os

    from monitor.config.loader import empty_config_issue, load_config, unset_env_warnings
    from monitor.runtime import config_checks

    try:
        config = load_config(file, config_checks())
    except ConfigError as exc:
        bootstrap.fail(str(exc), 1)
    if not config.projects and not allow_empty:
        bootstrap.fail(f"{empty_config_issue(file)} (pass --allow-empty to accept that)", 1)
    for warning in unset_env_warnings(file, os.environ):
        click.echo(f"warning: {warning}", err=True)
    sources = sum(len(p.sources) for p in config.projects)
    click.echo(f"{file}: OK ({len(config.projects)} projects, {sources} sources, {len(config.rules)} rules)")


@main.command("test-rules")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
def test_rules(files: tuple[str, ...]) -> None:
    """Unit-test alerting rules (a promtool-like YAML format; see alerts/rule_tests.py)."""
    from alerts.rule_tests import RuleTestError, describe, run_file
    from monitor.config.loader import load_config
    from monitor.providers import engine_extras
    from monitor.runtime import config_checks

    def load(path: Path) -> Any:
        return load_config(path, config_checks())

    passed = True
    for file in files:
        click.echo(f"Unit Testing: {file}")
        try:
            ok, text = describe(run_file(Path(file), load, engine_extras))
        except (RuleTestError, ConfigError) as exc:
            bootstrap.fail(f"  invalid test file: {exc}", 2)
        click.echo(text)
        passed = passed and ok
    if not passed:
        sys.exit(1)


@main.command()
@config_option
@db_option
@click.option("--once", is_flag=True, help="run every source once and exit (the only mode)")
@click.option("--project", "project_id", help="only this project's sources")
def collect(config: str | None, database_url: str | None, once: bool, project_id: str | None) -> None:
    """Run every source once, store the readings, print a table of outcomes."""
    if not once:
        bootstrap.fail("collect runs each source once: pass --once (continuous collection is `mlmon worker`)", 2)
    settings = bootstrap.settings(config, database_url)
    bootstrap.publish_listen(settings)
    configure("warning")
    runtime = bootstrap.runtime(settings)
    plans = runtime.plans
    if project_id is not None:
        if runtime.config.project(project_id) is None:
            bootstrap.fail(f"unknown project {project_id!r}", 2)
        plans = [p for p in plans if p.project == project_id]
    services = Services.build(runtime)
    with ThreadPoolExecutor(max_workers=8) as pool:
        records = list(pool.map(services.runner.run, plans))
    rows = [
        (r.project, r.source, r.kind, r.outcome, str(r.samples), f"{r.duration_seconds:.2f}s", r.error or "")
        for r in records
    ]
    _table(("PROJECT", "SOURCE", "KIND", "OUTCOME", "SAMPLES", "TIME", "ERROR"), rows)
    runtime.store.close()
    if any(not r.ok for r in records):
        sys.exit(1)


@main.command()
@click.option(
    "--data-dir",
    envvar="MLMON_DEMO_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".mlmon-demo"),
    show_default=True,
    help="where the demo keeps its files and database [env MLMON_DEMO_DIR]",
)
@click.option("--listen", help="host:port [env MLMON_LISTEN, default 127.0.0.1:8000]")
def demo(data_dir: Path, listen: str | None) -> None:
    """Serve the demo fleet: ten projects on generated data, on SQLite, reaching nothing outside."""
    from datetime import UTC, datetime

    from monitor.demo.files import DataDirError
    from monitor.demo.fleet import FLEET
    from monitor.demo.prepare import prepare_files, seed_store
    from monitor.demo.routes import router
    from monitor.demo.seed import LiveFeed

    address = listen or Settings().listen
    now = datetime.now(UTC)
    try:
        setup = prepare_files(data_dir, address, now)
    except DataDirError as exc:
        bootstrap.fail(str(exc), 2)
    settings = bootstrap.settings(str(setup.config), setup.database_url, address)
    bootstrap.publish_listen(settings)
    configure(settings.log_level)
    runtime = bootstrap.runtime(settings)
    pushed = seed_store(runtime.store, setup, now)
    click.echo(
        f"mlmon demo: {len(FLEET) + 1} projects, {pushed:,} samples of history, data in {setup.data}; "
        f"open http://{settings.listen}/",
        err=True,
    )
    feed = LiveFeed(runtime.store, FLEET, setup.data, setup.anchor, runtime.clock)
    run_server(settings, runtime, routers=[router], background=[feed])


@main.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@db_option
def extras(config: Path | None, database_url: str | None) -> None:
    """Print the optional extras CONFIG needs (comma-separated; the demo's without CONFIG)."""
    from monitor.extras import DEMO_EXTRAS, extras_of_file

    url = database_url or os.environ.get("MLMON_DATABASE_URL", "")
    click.echo(",".join(extras_of_file(config, url) if config else DEMO_EXTRAS))


for _family in (stack_commands, quality_commands, spend_commands, auth_commands, export_commands, report_commands):
    for _command in _family.COMMANDS:
        main.add_command(_command)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=False)]
        click.echo("  ".join([*cells, str(row[-1])]).rstrip())


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _on_sighup(action: Callable[[], object]) -> None:
    def handler(_signum: int, _frame: object) -> None:
        threading.Thread(target=action, name="reload", daemon=True).start()

    signal.signal(signal.SIGHUP, handler)
