"""Tokens (admins) and the change log (auditors and admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from monitor.api.auth import PrincipalDep, permit
from monitor.api.deps import RuntimeDep, parse_time
from monitor.auth.model import Permission, Role
from monitor.auth.tokens import TokenInfo
from monitor.core.durations import parse_duration
from monitor.core.errors import InvalidInput, Issue, NotFound
from monitor.store.changes import Change

router = APIRouter(prefix="/api/v1", tags=["access"])


class TokenOut(BaseModel):
    name: str
    role: str
    projects: list[str]
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    role: Role
    projects: list[str] = []
    expires: str | None = Field(default=None, description="lifetime, e.g. 90d")


class CreatedToken(TokenOut):
    token: str = Field(description="the secret: shown once, never again")


class ChangeOut(BaseModel):
    id: int | None
    at: datetime
    actor: str
    action: str
    project: str | None
    target: str
    details: dict[str, Any]


def _token_out(info: TokenInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "role": info.role.value,
        "projects": list(info.projects),
        "prefix": info.prefix,
        "created_at": info.created_at,
        "created_by": info.created_by,
        "expires_at": info.expires_at,
        "revoked_at": info.revoked_at,
        "last_used_at": info.last_used_at,
    }


@router.get("/tokens", summary="Tokens (never their secrets)", dependencies=[permit(Permission.MANAGE_TOKENS)])
def list_tokens(runtime: RuntimeDep) -> list[TokenOut]:
    return [TokenOut(**_token_out(t)) for t in runtime.tokens.all()]


@router.post(
    "/tokens",
    summary="Create a token; the secret is in this answer only",
    dependencies=[permit(Permission.MANAGE_TOKENS)],
)
def create_token(body: TokenIn, runtime: RuntimeDep, principal: PrincipalDep) -> CreatedToken:
    now = runtime.clock.now()
    unknown = [p for p in body.projects if runtime.config.project(p) is None]
    if unknown:
        raise InvalidInput([Issue("projects", f"unknown project {unknown[0]!r}", field="projects")], "invalid token")
    try:
        lifetime = parse_duration(body.expires) if body.expires else None
    except ValueError as exc:
        raise InvalidInput([Issue("expires", str(exc), field="expires")], "invalid token") from None
    secret, info = runtime.tokens.create(
        body.name, body.role, body.projects, principal.name, now, now + lifetime if lifetime else None
    )
    runtime.store.changes.record(
        Change(
            now,
            principal.name,
            "token.create",
            None,
            info.name,
            {"role": info.role.value, "projects": list(info.projects)},
        )
    )
    return CreatedToken(**_token_out(info), token=secret)


@router.delete("/tokens/{name}", summary="Revoke a token", dependencies=[permit(Permission.MANAGE_TOKENS)])
def revoke_token(name: str, runtime: RuntimeDep, principal: PrincipalDep) -> TokenOut:
    now = runtime.clock.now()
    if not runtime.tokens.revoke(name, now):
        raise NotFound(f"no active token named {name!r}")
    runtime.store.changes.record(Change(now, principal.name, "token.revoke", None, name, {}))
    info = runtime.tokens.get(name)
    assert info is not None
    return TokenOut(**_token_out(info))


@router.get("/changes", summary="The change log, oldest first", dependencies=[permit(Permission.READ_CHANGES)])
def list_changes(
    runtime: RuntimeDep,
    project: str | None = None,
    action: Annotated[list[str] | None, Query()] = None,
    since: str | None = None,
    until: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[ChangeOut]:
    found = runtime.store.changes.entries(
        since=parse_time(since, "since") if since else None,
        until=parse_time(until, "until") if until else None,
        projects=[project] if project else None,
        actions=action,
        limit=limit,
    )
    return [
        ChangeOut(
            id=c.id,
            at=c.at,
            actor=c.actor,
            action=c.action,
            project=c.project,
            target=c.target,
            details=dict(c.details),
        )
        for c in found
    ]
