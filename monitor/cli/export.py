"""`mlmon export prometheus-rules`: the configured rules as a Prometheus rules file.

Exit status: 0 written (rules that cannot be expressed are named on stderr), 2 an unreadable or
invalid configuration, or an output file that cannot be written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from alerts.kinds import REGISTRY as RULE_KINDS
from monitor.config.settings import Settings
from monitor.core.errors import ConfigError
from monitor.export.prometheus_rules import export_rules


@click.group("export")
def export() -> None:
    """Write mlmon's configuration in other tools' formats."""


@export.command("prometheus-rules")
@click.option("--config", "-c", type=click.Path(dir_okay=False), help="YAML file [env MLMON_CONFIG]")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="rules file (default stdout)")
def prometheus_rules(config: str | None, output: str | None) -> None:
    """Write the configured rules as Prometheus alerting rules over mlmon's /metrics.

    Check the result with `promtool check rules FILE`. Rules whose kind PromQL cannot express are
    left out, each named on stderr with the reason (and listed at the top of the file).
    """
    from monitor.config.loader import load_config
    from monitor.runtime import config_checks

    path = Path(config) if config else _configured_path()
    try:
        loaded = load_config(path, config_checks())
    except ConfigError as exc:
        click.echo(f"configuration refused:\n{exc}", err=True)
        sys.exit(2)
    result = export_rules(loaded, RULE_KINDS, origin=str(path))
    for skipped in result.skipped:
        click.echo(f"not exported: rule {skipped.rule!r} ({skipped.kind}): {skipped.reason}", err=True)
    if output is None:
        click.echo(result.text, nl=False)
    else:
        try:
            Path(output).write_text(result.text, encoding="utf-8")
        except OSError as exc:
            click.echo(f"cannot write {output}: {exc.strerror or exc}", err=True)
            sys.exit(2)
        click.echo(f"{output}: {len(result.rules)} rule(s) written, {len(result.skipped)} not exported", err=True)


def _configured_path() -> Path:
    try:
        return Settings().config
    except Exception as exc:
        click.echo(f"invalid settings: {exc}", err=True)
        sys.exit(2)


COMMANDS: list[click.Command] = [export]
