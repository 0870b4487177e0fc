"""Who is calling, and may they: FastAPI dependencies over the token store.

Credentials come from `Authorization: Bearer <token>` or the UI's session cookie. Without
credentials a caller is anonymous: a viewer when `auth.anonymous: viewer` (the default, so a
dashboard can be read without signing in), refused with 401 when `auth.anonymous: none`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from monitor.auth.model import ANONYMOUS, Permission, Principal
from monitor.auth.tokens import Forbidden, Unauthorized
from monitor.core.errors import NotFound

SESSION_COOKIE = "mlmon_session"
PROJECT_PARAMS = ("project_id", "project")


def _credentials(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("expected the header `Authorization: Bearer <token>`")
        return value.strip()
    return request.cookies.get(SESSION_COOKIE) or None


def current_principal(request: Request) -> Principal:
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    runtime: Any = request.app.state.runtime
    token = _credentials(request)
    if token is None:
        if runtime.config.auth.anonymous == "none":
            raise Unauthorized("sign in: send `Authorization: Bearer <token>` (see `mlmon token create`)")
        principal = ANONYMOUS
    else:
        principal = runtime.tokens.authenticate(token, runtime.clock.now())
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def _project_in(request: Request) -> str | None:
    for name in PROJECT_PARAMS:
        value = request.path_params.get(name) or request.query_params.get(name)
        if value:
            return str(value)
    return None


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency: the caller must hold `permission` (for the project named in the path or query)."""

    def check(request: Request, principal: PrincipalDep) -> Principal:
        project = _project_in(request)
        if project is not None and not principal.sees(project):
            # a scoped token learns nothing about projects outside its scope
            raise NotFound(f"unknown project {project!r}")
        if not principal.can(permission, project):
            raise Forbidden(deny_message(principal, permission, project))
        return principal

    return check


def permit(permission: Permission) -> Any:
    """`dependencies=[permit(Permission.X)]` on a route or router."""
    return Depends(require(permission))


def deny_message(principal: Principal, permission: Permission, project: str | None = None) -> str:
    scope = f" for project {project!r}" if project else ""
    return f"{principal.name} (role {principal.role.value}) may not {permission.value.replace('_', ' ')}{scope}"


def check_project(principal: Principal, permission: Permission, project: str) -> None:
    """For actions whose project is in the body (a pushed batch, an alert, a silence)."""
    if not principal.can(permission, project):
        raise Forbidden(deny_message(principal, permission, project))
