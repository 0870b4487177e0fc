"""What every command starts with: settings, the configuration, the store or the whole runtime,
each refused with one line on stderr and the documented exit status instead of a traceback."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal, NoReturn

import click

from monitor.config.loader import load_config
from monitor.config.models import MlmonConfig
from monitor.config.settings import Settings
from monitor.core.errors import ConfigError
from monitor.runtime import Runtime, config_checks
from monitor.services import SchemaNotReady, prepare_database
from monitor.store import migrate
from monitor.store.db import make_engine
from monitor.store.store import Store

USAGE = 2
"""Exit status of a refused input or option (1 is a failure of the work itself)."""


def fail(message: str, status: int = USAGE) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(status)


def settings(config: str | None = None, database_url: str | None = None, listen: str | None = None) -> Settings:
    overrides: dict[str, Any] = {}
    if config:
        overrides["config"] = Path(config)
    if database_url:
        overrides["database_url"] = database_url
    if listen:
        overrides["listen"] = listen
    try:
        return Settings(**overrides)
    except Exception as exc:
        fail(f"invalid settings: {exc}")


def publish_listen(chosen: Settings) -> None:
    """Sources may name the listen address (`url: http://${MLMON_LISTEN}/api/v1/status`): make it
    the one in force for the commands that run sources, whether it came from --listen, the
    environment or the default."""
    os.environ["MLMON_LISTEN"] = chosen.listen


def configuration(path: str | None) -> tuple[Settings, MlmonConfig]:
    """The settings and the checked configuration, without opening the store."""
    chosen = settings(path)
    try:
        return chosen, load_config(chosen.config, config_checks())
    except ConfigError as exc:
        fail(f"configuration refused:\n{exc}")


def runtime(chosen: Settings, *, prepared: bool = True) -> Runtime:
    """The runtime on `chosen`; `prepared` also brings the schema to where this mlmon needs it."""
    try:
        made = Runtime.create(chosen)
    except ConfigError as exc:
        fail(f"configuration refused:\n{exc}")
    if prepared:
        try:
            prepare_database(made)
        except SchemaNotReady as exc:
            fail(str(exc), 1)
    return made


def store(database_url: str | None, *, empty: Literal["migrate", "refuse", "as is"]) -> Store:
    """The store at `database_url` (or the settings' URL) with its schema at head.

    `empty` says what a database without tables gets: a fresh SQLite file may be migrated on the
    spot (`migrate`), refused like any other database not at head (`refuse`), or opened as it is
    (`as is`, for commands that only write tables the caller knows exist)."""
    engine = make_engine(database_url or settings().database_url)
    if empty == "as is":
        return Store.on(engine)
    if empty == "migrate" and engine.dialect.name == "sqlite" and migrate.is_empty(engine):
        migrate.upgrade(engine)
    current, head = migrate.current_revision(engine), migrate.head_revision(engine)
    if current != head:
        engine.dispose()
        fail(
            f"the database schema is at {current or 'no revision'} but this mlmon needs {head}; run `mlmon migrate`", 1
        )
    return Store.on(engine)
