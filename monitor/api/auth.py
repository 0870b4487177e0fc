"""Who is calling, and may they: FastAPI dependencies over the token store.

Credentials come from `Authorization: Bearer <token>` or the UI's session cookie. Without
credentials a caller is anonymous: a viewer when `auth.anonymous: viewer` (the default, so a
dashboard can be read without signing in), refused with 401 when `auth.anonymous: none`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request

from monitor.auth.attempts import FailedAttempts
from monitor.auth.model import ANONYMOUS, Permission, Principal
from monitor.auth.tokens import Forbidden, Unauthorized
from monitor.core.errors import InvalidInput, Issue, NotFound

SESSION_COOKIE = "mlmon_session"
PROJECT_PARAMS = ("project_id", "project")


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_API_PATHS = ("/api/", "/-/")
"""The UI's pages check their form posts themselves (monitor.web.session.check_origin)."""


def _credentials(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("expected the header `Authorization: Bearer <token>`")
        return value.strip()
    cookie = request.cookies.get(SESSION_COOKIE) or None
    if cookie is not None and request.method not in _SAFE_METHODS and request.url.path.startswith(_API_PATHS):
        check_cookie_write(request)
    return cookie


def check_cookie_write(request: Request) -> None:
    """A browser sends the session cookie with any request to mlmon, also one a page of another
    site (a sibling subdomain, another port: SameSite does not cover those) makes with a
    `text/plain` body, which needs no CORS preflight. An API write authenticated by the cookie
    must therefore be `application/json` (cross-origin, that needs a preflight mlmon never
    grants) and, when the browser names its origin, come from mlmon's own. Bearer-token clients
    send no cookie and are not affected."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    if has_body and media != "application/json":
        raise Forbidden(
            "a request authenticated by the session cookie must send `content-type: application/json`; "
            "scripts should use `Authorization: Bearer <token>`"
        )
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden(f"a request from {origin[:100]} with mlmon's session cookie is refused")
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise Forbidden("a cross-site request with mlmon's session cookie is refused")


def attempts(request: Request) -> FailedAttempts:
    """The app's count of failed attempts (created on first use, e.g. in tests' bare apps)."""
    found = getattr(request.app.state, "auth_attempts", None)
    if not isinstance(found, FailedAttempts):
        found = request.app.state.auth_attempts = FailedAttempts()
    return found


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


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
        counter, address = attempts(request), client_address(request)
        counter.check(address)
        try:
            principal = runtime.tokens.authenticate(token, runtime.clock.now())
        except Unauthorized as exc:
            counter.failed(address, f"{request.method} {request.url.path}: {exc}")
            raise
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def _project_in(request: Request) -> str | None:
    for name in PROJECT_PARAMS:
        value = request.path_params.get(name) or request.query_params.get(name)
        if value:
            return str(value)
    return None


def _no_empty_project(request: Request) -> None:
    """`?project=` is a mistake (an unset shell variable), not a project named ''."""
    for name in PROJECT_PARAMS:
        if any(not value.strip() for value in request.query_params.getlist(name)):
            raise InvalidInput(
                [Issue(f"query.{name}", "must name a project; leave the parameter out for all", field=name)],
                "invalid request",
            )


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency: the caller must hold `permission` (for the project named in the path or query)."""

    def check(request: Request, principal: PrincipalDep) -> Principal:
        _no_empty_project(request)
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
