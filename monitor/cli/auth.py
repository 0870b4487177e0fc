"""`mlmon token create|list|revoke`: API tokens for people, jobs and the UI."""

from __future__ import annotations

import getpass
import sys
from datetime import timedelta

import click

from monitor.auth.model import Role
from monitor.auth.tokens import TokenStore
from monitor.cli import bootstrap
from monitor.core.clock import SystemClock
from monitor.core.durations import parse_duration
from monitor.core.errors import InvalidInput
from monitor.store.changes import Change


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


@click.group()
def token() -> None:
    """Create, list and revoke API tokens (only a hash of each token is stored)."""


@token.command("create")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--project", "projects", multiple=True, help="limit the token to a project (repeat for several)")
@click.option("--name", help="a name to recognise the token by (default: role and projects)")
@click.option("--expires", help="lifetime such as 90d (default: no expiry)")
@click.option("--database-url", help="SQLAlchemy URL [env MLMON_DATABASE_URL]")
def create(
    role: str, projects: tuple[str, ...], name: str | None, expires: str | None, database_url: str | None
) -> None:
    """Create a token and print it once."""
    now = SystemClock().now()
    try:
        lifetime: timedelta | None = parse_duration(expires) if expires else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from None
    store = bootstrap.store(database_url, empty="as is")
    label = name or "-".join([role, *projects]) + now.strftime("-%Y%m%d%H%M%S")
    try:
        secret, info = TokenStore(store.engine).create(
            label, Role(role), projects, _actor(), now, now + lifetime if lifetime else None
        )
    except InvalidInput as exc:
        click.echo(f"cannot create the token: {'; '.join(i.message for i in exc.issues)}", err=True)
        sys.exit(2)
    details = {
        "role": role,
        "projects": list(projects),
        "expires_at": info.expires_at.isoformat() if info.expires_at else None,
    }
    store.changes.record(Change(now, _actor(), "token.create", None, info.name, details))
    store.close()
    click.echo(secret)
    click.echo(f"token {info.name!r} ({role}{', ' + ', '.join(projects) if projects else ''}): shown once", err=True)


@token.command("list")
@click.option("--database-url", help="SQLAlchemy URL [env MLMON_DATABASE_URL]")
def list_tokens(database_url: str | None) -> None:
    """Tokens by name, with role, scope and state (never the secret)."""
    store = bootstrap.store(database_url, empty="as is")
    for info in TokenStore(store.engine).all():
        state = "revoked" if info.revoked_at else "active"
        scope = ",".join(info.projects) or "*"
        expires = info.expires_at.date().isoformat() if info.expires_at else "never"
        click.echo(f"{info.name}\t{info.role.value}\t{scope}\t{info.prefix}...\texpires {expires}\t{state}")
    store.close()


@token.command("revoke")
@click.argument("name")
@click.option("--database-url", help="SQLAlchemy URL [env MLMON_DATABASE_URL]")
def revoke(name: str, database_url: str | None) -> None:
    """Revoke a token by name (it stays listed as revoked)."""
    store = bootstrap.store(database_url, empty="as is")
    now = SystemClock().now()
    if not TokenStore(store.engine).revoke(name, now):
        click.echo(f"no active token named {name!r}", err=True)
        sys.exit(1)
    store.changes.record(Change(now, _actor(), "token.revoke", None, name, {}))
    store.close()
    click.echo(f"revoked {name!r}")


COMMANDS: list[click.Command] = [token]
