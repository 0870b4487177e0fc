"""`mlmon` subcommands of the stack family.

    mlmon scan PATH|image:REF... [--advisories DIR|ZIP|URL] [--format table|json|plan|sarif|cyclonedx]
               [--fail-on SEVERITY]
    mlmon advisories import PATH | refresh | status
    mlmon stack sync | status | findings [--as-of TIME]

Exit status: 0 ok, 1 the policy is violated (scan) or a step failed, 2 a usage or input error,
3 (scan) nothing to check: no input pins a package with a valid version.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from monitor.cli import bootstrap
from monitor.core.clock import SystemClock
from monitor.core.errors import SourceError
from monitor.http import HttpFactory
from monitor.stack.advisories.index import AdvisoryIndex
from monitor.stack.advisories.offline import OfflineSourceError
from monitor.stack.config import DEFAULT_OSV_URL
from monitor.stack.ignore_file import IgnoreFileError, load_ignore_file
from monitor.stack.inventory.image.manifests import DEFAULT_PLATFORM
from monitor.stack.inventory.model import Inventory, InventoryError
from monitor.stack.inventory.target import Target
from monitor.stack.package_index import configured_index, fetch_history
from monitor.stack.plan.index_client import IndexClient, MemoryCache
from monitor.stack.plan.render import render_plan
from monitor.stack.releases import ReleaseHistory
from monitor.stack.report.sarif import render_sarif
from monitor.stack.report.text import render_table, table
from monitor.stack.scan import (
    FAIL_ON,
    Policy,
    ScanReport,
    describe_error,
    is_url,
    judge,
    load_advisories,
    packages_of,
    report_doc,
)
from monitor.stack.scan_inputs import FORMATS, plan_inputs, read_input
from monitor.stack.store import StackStore
from monitor.stack.versions import canonical_name, parse_version


@contextmanager
def _progress(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, sized by the first report (the total is known only then)."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if not enabled:
            return
        bar = state.get("bar")
        if bar is None:
            bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)
            bar.__enter__()
            state["bar"] = bar
        bar.update(done - state.get("done", 0))
        state["done"] = done

    try:
        yield update
    finally:
        bar = state.get("bar")
        if bar is not None:
            bar.__exit__(None, None, None)


NOTHING_TO_CHECK = 3


def checkable(inventory: Inventory) -> tuple[Inventory, list[str]]:
    """The inventory without packages whose version `packaging` cannot parse (nothing can be
    matched against them: they would pass as "undetermined"), and a note for each one dropped."""
    kept = [p for p in inventory.packages if parse_version(p.version) is not None]
    if len(kept) == len(inventory.packages):
        return inventory, []
    notes = [
        f"{p.origin}{f':{p.line}' if p.line else ''}: {p.name} {p.version[:60]!r} is not a valid version; not checked"
        for p in inventory.packages
        if parse_version(p.version) is None
    ]
    return replace(inventory, packages=tuple(kept), _index={}), notes


# --- mlmon scan ---------------------------------------------------------------------------------------


def _histories(
    index_opt: str, packages: list[str], inventories: list[Inventory], http: HttpFactory, notes: list[str]
) -> tuple[dict[str, ReleaseHistory], str | None]:
    if index_opt == "none":
        return {}, None
    wanted = [p for p in packages if any(inv.versions(p) for inv in inventories)]
    if not wanted:
        return {}, None
    try:
        choice = configured_index(os.environ, None if index_opt == "pip" else index_opt)
    except SourceError as exc:
        notes.append(f"release staleness not checked: {exc}")
        return {}, None
    histories: dict[str, ReleaseHistory] = {}
    with http.client() as client:
        for package in wanted:
            try:
                histories[package] = fetch_history(client, choice.url, package)
            except SourceError as exc:
                notes.append(f"release staleness of {package} not checked: {exc}")
    return histories, f"{choice.url} ({choice.origin})"


def _plan_index(index_opt: str, notes: list[str]) -> str | None:
    """The index the plan reads (None with `--index none`: the plan is then unverified)."""
    if index_opt == "none":
        return None
    try:
        return configured_index(os.environ, None if index_opt == "pip" else index_opt).url
    except SourceError as exc:
        notes.append(f"remediation plan not checked against an index: {exc}")
        return None


EXIT_CLEAN, EXIT_POLICY, EXIT_INPUT, EXIT_NOTHING = 0, 1, 2, NOTHING_TO_CHECK


@dataclass(frozen=True)
class RenderContext:
    """What a renderer may use besides the report: the policy verdict and output options."""

    violations: list[str]
    sarif_root: Path | None = None


Renderer = Callable[[ScanReport, RenderContext], str]


def _json_text(doc: Any) -> str:
    return json.dumps(doc, indent=2, default=str) + "\n"


def _render_cyclonedx(report: ScanReport, ctx: RenderContext) -> str:
    from monitor.stack.report.cyclonedx import render_cyclonedx  # the CycloneDX library loads slowly

    return _json_text(render_cyclonedx(report))


RENDERERS: dict[str, Renderer] = {
    "table": lambda report, ctx: render_table(report, ctx.violations),
    "json": lambda report, ctx: _json_text(
        {**report_doc(report), "policy": {"violations": ctx.violations, "passed": not ctx.violations}}
    ),
    "plan": lambda report, ctx: render_plan({t.name: t.plan for t in report.targets if t.plan is not None}),
    "sarif": lambda report, ctx: _json_text(render_sarif(report, ctx.sarif_root)),
    "cyclonedx": _render_cyclonedx,
}
"""Output formats of `mlmon scan`, by name: a new format is one entry here."""


def _writable(output: str) -> None:
    """Fail before scanning when the report could not be written (exit 2, not a traceback)."""
    target = Path(output).expanduser()
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        bootstrap.fail(f"cannot write the report to {output}: it is a directory")
    if not parent.is_dir():
        bootstrap.fail(f"cannot write the report to {output}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        bootstrap.fail(f"cannot write the report to {output}: permission denied")


def _advisory_error(spec: str, exc: Exception) -> str:
    message = f"cannot load advisories from {spec}: {describe_error(exc)}"
    if is_url(spec):
        message += (
            "\n  offline? pass --advisories DIR|ZIP (or set MLMON_ADVISORIES) with an OSV database, "
            "e.g. the PyPI ecosystem's all.zip from OSV's bucket, downloaded beforehand"
        )
    return message


@click.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(exists=False))
@click.option(
    "--advisories",
    "advisories",
    metavar="DIR|ZIP|URL|builtin",
    envvar="MLMON_ADVISORIES",
    help="offline OSV database (directory, all.zip, `builtin`: the shipped torch-family snapshot) or OSV API URL "
    f"[env MLMON_ADVISORIES; default {DEFAULT_OSV_URL}]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(RENDERERS)),
    default="table",
    show_default=True,
    help="plan: only the remediation plan (what to upgrade, to what); it is also in table and json",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    default="any",
    show_default=True,
    help="lowest severity that fails the scan ('any' includes findings without a severity)",
)
@click.option(
    "--fail-on-undetermined",
    is_flag=True,
    help="also fail on findings whose advisory bounds are not PEP 440 (at or above --fail-on)",
)
@click.option("--fixable-only", is_flag=True, help="only findings with a fixed version fail the scan")
@click.option("--max-minors-behind", type=click.IntRange(min=0), help="fail when a tracked package is further behind")
@click.option("--ignore-file", type=click.Path(dir_okay=False, exists=True), help="YAML ignores (id, reason, expires)")
@click.option(
    "--index",
    "index_opt",
    default="pip",
    show_default=True,
    metavar="pip|none|URL",
    help="package index for release staleness and the plan: the one pip is configured to use, none, or a URL",
)
@click.option("--track", multiple=True, default=["torch"], show_default=True, help="packages whose staleness is shown")
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="PATH=FORMAT",
    help=f"the format of an input its name does not tell (or FORMAT:PATH); FORMAT: {', '.join(FORMATS)}",
)
@click.option(
    "--environment",
    "environment",
    metavar="KEY=VALUE,...",
    help="the target environment of lock files: python_version=3.11,sys_platform=linux"
    "[,platform_machine=x86_64,python_full_version=3.11.9] (entries not installed there are left out)",
)
@click.option(
    "--platform",
    default=DEFAULT_PLATFORM,
    show_default=True,
    metavar="OS/ARCH",
    help="the platform read from multi-platform images",
)
@click.option(
    "--sarif-root",
    type=click.Path(file_okay=False),
    help="the checkout root SARIF paths are relative to [default: the working directory]",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="write the report here instead of stdout")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="seconds per HTTP request")
def scan(
    paths: tuple[str, ...],
    advisories: str | None,
    fmt: str,
    fail_on: str,
    fail_on_undetermined: bool,
    fixable_only: bool,
    max_minors_behind: int | None,
    ignore_file: str | None,
    index_opt: str,
    track: tuple[str, ...],
    types: tuple[str, ...],
    environment: str | None,
    platform: str,
    sarif_root: str | None,
    output: str | None,
    timeout: float,
) -> None:
    """Check environments, lock files, SBOMs, repositories or images against OSV advisories (for CI).

    An input is a path, image:REGISTRY/REPO[:TAG][@DIGEST], oci:DIR[:REF] or docker-archive:FILE.

    Exit status: 0 the policy passes, 1 it is violated, 2 a usage or input error (including an
    output file that cannot be written), 3 nothing to check (no package with a valid version).
    """
    now = SystemClock().now()
    http = HttpFactory(timeout=timeout)
    try:
        inputs = plan_inputs(paths, types)
    except ValueError as exc:
        bootstrap.fail(f"--type {exc}")
    if not inputs:
        bootstrap.fail("nothing to scan: give a PATH (or image:REF, oci:DIR, docker-archive:FILE); see --help")
    try:
        target = Target.parse(environment) if environment else None
    except ValueError as exc:
        bootstrap.fail(f"--environment: {exc}")
    if output:
        _writable(output)
    inventories: list[tuple[str, Inventory]] = []
    notes: list[str] = []
    with http.client() as client:
        for item in inputs:
            try:
                inventory, dropped = checkable(
                    read_input(item, target=target, client=client, env=os.environ, platform=platform)
                )
            except InventoryError as exc:
                bootstrap.fail(f"cannot read {item.spec}: {exc}")
            inventories.append((item.spec, inventory))
            notes.extend(dropped)
    if not any(inv.packages for _, inv in inventories):
        for note in [*notes, *(n for _, inv in inventories for n in inv.notes)]:
            click.echo(f"note: {note}", err=True)
        bootstrap.fail(
            f"nothing to check: no package with a valid version in {', '.join(name for name, _ in inventories)} "
            "(unpinned requirements are not checked)",
            NOTHING_TO_CHECK,
        )
    try:
        ignores = load_ignore_file(ignore_file) if ignore_file else []
    except IgnoreFileError as exc:
        bootstrap.fail(str(exc))
    spec = advisories or DEFAULT_OSV_URL
    quiet = fmt != "table" and output is None
    try:
        with _progress("Loading advisories", enabled=not quiet and sys.stderr.isatty()) as progress:
            load = load_advisories(spec, packages_of(inv for _, inv in inventories), http, progress)
    except (OfflineSourceError, SourceError) as exc:
        bootstrap.fail(_advisory_error(spec, exc))
    for rejected in load.rejected:
        click.echo(f"warning: advisory record rejected: {rejected.where}: {rejected.reason}", err=True)
    notes.extend(f"{name}: pins no package version; nothing checked" for name, inv in inventories if not inv.packages)
    histories, index_used = _histories(
        index_opt, [canonical_name(t) for t in track], [i for _, i in inventories], http, notes
    )
    if index_opt == "none":
        notes.append("release histories were not looked up (--index none): no staleness, no fix hints from releases")
    plan_index = _plan_index(index_opt, notes)
    with http.client() as plan_http:
        report = judge(
            inventories,
            AdvisoryIndex(load.advisories),
            load,
            now,
            ignores=ignores,
            histories=histories,
            index_url=index_used,
            plan_lookup=IndexClient(
                plan_http if plan_index else None, plan_index, MemoryCache(), now, no_index=f"--index {index_opt}"
            ),
            plan_index=plan_index,
        )
    report.notes.extend(notes)
    policy = Policy(fail_on, fail_on_undetermined, fixable_only, max_minors_behind)
    violations = policy.violations(report)
    text = RENDERERS[fmt](report, RenderContext(violations, Path(sarif_root) if sarif_root else None))
    if output:
        try:
            Path(output).expanduser().write_text(text, encoding="utf-8")
        except OSError as exc:
            bootstrap.fail(f"cannot write the report to {output}: {exc.strerror or exc}")
        for note in notes:
            click.echo(f"note: {note}", err=True)
        click.echo(
            f"{output}: {sum(len(t.findings) for t in report.targets)} findings; "
            f"policy {'violated' if violations else 'passed'}",
            err=True,
        )
    else:
        click.echo(text, nl=False)
    if violations:
        if fmt != "table" or output:
            click.echo(f"policy violated: {policy.summary(report)}", err=True)
        sys.exit(EXIT_POLICY)


# --- database-backed commands ---------------------------------------------------------------------------


config_option = click.option("--config", "-c", type=click.Path(dir_okay=False), help="YAML file [env MLMON_CONFIG]")
db_option = click.option("--database-url", help="SQLAlchemy URL [env MLMON_DATABASE_URL]")


@click.group("advisories")
def advisories_group() -> None:
    """The stored advisory database: import, refresh, status."""


@advisories_group.command("import")
@click.argument("path", type=click.Path(exists=False))
@db_option
def advisories_import(path: str, database_url: str | None) -> None:
    """Import an offline OSV database (a directory of JSON files, OSV's all.zip, or `builtin`: the shipped snapshot)."""
    from monitor.stack.sync import import_offline

    store = bootstrap.store(database_url, empty="migrate")
    try:
        with _progress("Importing advisories") as progress:
            result = import_offline(store, path, SystemClock().now(), progress=progress)
    except OfflineSourceError as exc:
        bootstrap.fail(str(exc))
    finally:
        store.close()
    click.echo(
        f"revision {result.revision}: {result.added} added, {result.changed} updated, {result.unchanged} unchanged, "
        f"{result.rejected} rejected"
    )
    if result.rejected:
        click.echo("rejected records are listed by `mlmon advisories status`", err=True)


@advisories_group.command("refresh")
@config_option
@db_option
def advisories_refresh(config: str | None, database_url: str | None) -> None:
    """Refresh advisories and release histories from the configured sources now."""
    from monitor.stack.sync import refresh_advisories, refresh_releases

    runtime = bootstrap.runtime(bootstrap.settings(config, database_url))
    now = runtime.clock.now()
    http = HttpFactory()
    with _progress("Fetching advisories") as progress:
        outcome = refresh_advisories(runtime.store, runtime.config, http, now, force=True, progress=progress)
    outcomes = [outcome, *refresh_releases(runtime.store, runtime.config, http, os.environ, now, force=True)]
    failed = False
    for item in outcomes:
        status = f"failed: {item.error}" if item.error else f"ok {item.detail}"
        failed = failed or item.error is not None
        click.echo(f"{item.name}: {status}")
    runtime.store.close()
    if failed:
        sys.exit(1)


@advisories_group.command("status")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def advisories_status(database_url: str | None, fmt: str) -> None:
    """Feeds (with the age of their data), counts and recent revisions."""
    store = bootstrap.store(database_url, empty="migrate")
    stack = StackStore(store.engine)
    now = datetime.now(UTC)
    doc: dict[str, Any] = {
        "counts": stack.advisory_counts(),
        "content_revision": stack.content_revision(),
        "feeds": [f.to_doc(now) for f in stack.feeds()],
        "revisions": stack.revisions(10),
    }
    store.close()
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    counts = doc["counts"]
    click.echo(
        f"{counts['records']} records ({counts['withdrawn']} withdrawn), content revision {doc['content_revision']}"
    )
    rows = []
    for feed in doc["feeds"]:
        age = feed["data_age_seconds"]
        rows.append(
            (
                feed["name"],
                feed["kind"],
                "up" if feed["up"] else "FAILED",
                f"{age / 3600:.1f}h" if age is not None else "never",
                feed["last_error"] or "",
            )
        )
    if rows:
        for line in table(("FEED", "KIND", "STATE", "DATA AGE", "LAST ERROR"), rows):
            click.echo(line)
    for rev in doc["revisions"]:
        click.echo(
            f"revision {rev['revision']} {rev['at']} {rev['feed']}: +{rev['added']} ~{rev['changed']} "
            f"={rev['unchanged']} rejected {rev['rejected']}"
        )
        for err in rev["errors"][:5]:
            click.echo(f"    rejected {err['where']}: {err['reason']}")


@click.group("stack")
def stack_group() -> None:
    """PyTorch stack health: sync, status, findings history."""


@stack_group.command("sync")
@config_option
@db_option
@click.option("--refresh/--no-refresh", default=True, help="also refresh due advisory and index feeds")
@click.option("--force", is_flag=True, help="refresh feeds and reconcile every project even if nothing changed")
def stack_sync(config: str | None, database_url: str | None, refresh: bool, force: bool) -> None:
    """Ingest inventories, refresh due feeds, reconcile findings (what the service does every minute)."""
    from monitor.stack.sync import tick

    runtime = bootstrap.runtime(bootstrap.settings(config, database_url))
    report = tick(
        runtime.store, runtime.config, runtime.clock.now(), HttpFactory(), os.environ, refresh=refresh, force=force
    )
    runtime.store.close()
    click.echo(f"inventories updated: {len(report.ingest.updated)}, removed: {len(report.ingest.removed)}")
    for feed in report.feeds:
        if feed.ran:
            click.echo(f"{feed.name}: {'failed: ' + feed.error if feed.error else 'refreshed'}")
    rec = report.reconcile
    if rec.no_advisories:
        click.echo("no advisories stored yet: run `mlmon advisories import PATH` or `mlmon advisories refresh`")
    click.echo(
        f"projects reconciled: {rec.reconciled}/{rec.projects}; opened {rec.opened}, "
        f"resolved {rec.resolved}, changed {rec.changed}"
    )
    plans = report.plans
    if plans is not None:
        index = plans.index_url or f"no index ({plans.index_note or 'stack.index disabled'})"
        click.echo(f"remediation plans: {plans.computed} computed, {plans.kept} unchanged; index {index}")
    errors = {**report.ingest.errors, **rec.errors, **{f.name: f.error for f in report.feeds if f.error}}
    if plans is not None:
        errors.update({f"plan of {p}": e for p, e in plans.errors.items()})
    for where, error in errors.items():
        click.echo(f"error: {where}: {error}", err=True)
    if errors or rec.no_advisories:
        sys.exit(1)


@stack_group.command("findings")
@db_option
@click.option("--project")
@click.option("--package")
@click.option("--as-of", "as_of", help="RFC 3339 time: findings open at that moment")
@click.option("--all", "include_resolved", is_flag=True, help="include resolved findings")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def stack_findings(
    database_url: str | None,
    project: str | None,
    package: str | None,
    as_of: str | None,
    include_resolved: bool,
    fmt: str,
) -> None:
    """Findings from the history: open now, open at --as-of, or all."""
    from monitor.stack.history import finding_doc, parse_moment

    moment = None
    if as_of:
        try:
            moment = parse_moment(as_of)
        except ValueError as exc:
            bootstrap.fail(f"--as-of: {exc}")
    store = bootstrap.store(database_url, empty="migrate")
    stack = StackStore(store.engine)
    rows = stack.findings(
        project=project,
        package=canonical_name(package) if package else None,
        as_of=moment,
        include_resolved=include_resolved,
    )
    events = stack.finding_events([r.id for r in rows], until=moment)
    docs = [finding_doc(r, events.get(r.id, []), moment) for r in rows]
    store.close()
    if fmt == "json":
        click.echo(json.dumps(docs, indent=2, default=str))
        return
    table_rows = [
        (
            d["project"],
            d["package"],
            ", ".join(d["versions"]),
            d["id"],
            d["severity"],
            d["status"],
            (d["exposed_since"] or "")[:10],
            (d["first_seen_at"] or "")[:10],
            (d["resolved_at"] or "")[:10],
        )
        for d in docs
    ]
    header = ("PROJECT", "PACKAGE", "VERSIONS", "ID", "SEVERITY", "STATUS", "EXPOSED", "FIRST SEEN", "FIXED")
    for line in table(header, table_rows):
        click.echo(line)


COMMANDS: list[click.Command] = [scan, advisories_group, stack_group]
