"""Who is browsing: the session cookie the sign-in page sets, and the checks of form posts.

Signing in stores the token itself in an HttpOnly, SameSite=Strict cookie (`Secure` over https):
the API's `current_principal` reads the same cookie, so a page and the API agree on who is asking,
and revoking or expiring the token ends the session on the next request. SameSite=Strict keeps
other sites' pages from posting with it; form posts must also come from this origin when the
browser says where they come from (`Origin`).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode, urlsplit

from fastapi import Request, Response

from monitor.api.auth import SESSION_COOKIE, current_principal
from monitor.auth.model import Principal
from monitor.auth.tokens import Forbidden
from monitor.core.errors import MlmonError


class SignInNeeded(MlmonError):
    """No credentials while anonymous browsing is off: the page redirects to the sign-in page."""

    def __init__(self, target: str) -> None:
        super().__init__("sign in to see this page")
        self.target = target


def requested(request: Request) -> str:
    """The path and query of the request, as a `next` target."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def login_url(target: str, reason: str = "") -> str:
    params = {"next": target} if target and target != "/" else {}
    if reason:
        params["reason"] = reason
    return "/login" + (f"?{urlencode(params)}" if params else "")


def page_principal(request: Request) -> Principal:
    """The caller of a page: from the bearer header or the session cookie, else anonymous when
    `auth.anonymous` allows it; raises Unauthorized (bad credentials) or SignInNeeded."""
    runtime = request.app.state.runtime
    has_credentials = bool(request.headers.get("authorization") or request.cookies.get(SESSION_COOKIE))
    if not has_credentials and runtime.config.auth.anonymous == "none":
        raise SignInNeeded(requested(request))
    return current_principal(request)


def safe_next(target: str | None) -> str:
    """Only a path on this site (never `//host` or a scheme) is a place to go after signing in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def set_session(response: Response, request: Request, token: str, expires_at: datetime | None) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
        expires=expires_at,
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


def check_origin(request: Request) -> None:
    """Refuse a form post that a browser says comes from another site."""
    origin = request.headers.get("origin")
    if origin is None or (origin == "null" and not request.cookies.get(SESSION_COOKIE)):
        return
    host = request.headers.get("host", "")
    if urlsplit(origin).netloc != host:
        raise Forbidden(f"a form posted from {origin} to {host} is refused: post forms from mlmon's own pages")
