"""The web UI's pages and form posts (server-rendered HTML, not part of the OpenAPI schema).

GET  /                                   overview: every project's scorecard (sort, filter, page)
GET  /projects/{project_id}              one project: quality, spend, stack, alerts, events
GET  /alerts                             alerts with silence/inhibition status; silences
POST /alerts/{alert_id}/ack              acknowledge (the API's function and checks)
POST /alerts/silences                    create a silence (the API's function and checks)
POST /alerts/silences/{silence_id}/expire
GET  /audit                              the stack audit report (auditors, admins)
GET  /audit/print, /audit/export         the report's print renderer; JSON and CSV downloads
GET  /login, POST /login, GET|POST /logout

Errors become pages, never a stack trace: bad or expired credentials show the sign-in page with
the reason (401), a missing permission 403, an unknown project 404, bad parameters 422.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from monitor.api.auth import SESSION_COOKIE, attempts, client_address
from monitor.api.failures import RETRY_AFTER_SECONDS, database_down, log_database_down
from monitor.api.routes.alerts import (
    AckIn,
    SilenceIn,
    ack_alert,
    create_silence,
    expire_silence,
    list_alerts,
    list_silences,
)
from monitor.auth.attempts import TooManyAttempts
from monitor.auth.model import Permission, Principal
from monitor.auth.tokens import Forbidden, Unauthorized
from monitor.core.durations import parse_duration
from monitor.core.errors import InvalidInput, Issue, MlmonError, NotFound
from monitor.runtime import Runtime
from monitor.web import pages
from monitor.web.render import STATIC, render
from monitor.web.session import (
    SignInNeeded,
    check_origin,
    clear_session,
    login_url,
    page_principal,
    requested,
    safe_next,
    set_session,
)
from monitor.web.site import CURRENT as CURRENT_SITE
from monitor.web.site import UNKNOWN_SITE, site_for

log = logging.getLogger("mlmon.web")

MAX_FORM_BYTES = 64 * 1024
NOTICES = {
    "acked": "Alert acknowledged.",
    "silenced": "Silence created.",
    "expired": "Silence expired.",
    "signed-out": "Signed out.",
}


def _html(body: str, status: int = 200) -> HTMLResponse:
    response = HTMLResponse(body, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(
    request: Request, status: int, title: str, message: str, principal: Principal | None = None
) -> HTMLResponse:
    body = render("error.html", title=title, message=message, status=status, principal=principal,
                  request_path=requested(request), nav="")  # fmt: skip
    return _html(body, status)


def login_page(
    request: Request, status: int = 200, reason: str = "", notice: str = "", target: str = "/"
) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    body = render(
        "login.html", reason=reason, notice=notice, target=safe_next(target), principal=principal, nav="login"
    )
    response = _html(body, status)
    if status == 401 and request.cookies.get(SESSION_COOKIE):
        clear_session(response, request)
    return response


class PageRoute(APIRoute):
    """Turns the errors of a page into pages (the API's handlers answer JSON)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                CURRENT_SITE.set(site_for(_runtime(request)))
            except Exception as exc:
                # The line about the data is never worth failing a page for; the page says it is unknown.
                # With the database down, the page itself fails next and logs that once.
                if not database_down(exc):
                    log.exception("reading the advisory feed for the page footer failed")
                CURRENT_SITE.set(UNKNOWN_SITE)
            try:
                return await original(request)
            except SignInNeeded as exc:
                return RedirectResponse(login_url(exc.target), status_code=303)
            except TooManyAttempts as exc:
                page = login_page(request, 429, reason=str(exc), target=requested(request))
                page.headers["Retry-After"] = str(exc.retry_after)
                return page
            except Unauthorized as exc:
                return login_page(request, 401, reason=str(exc), target=requested(request))
            except Forbidden as exc:
                return error_page(request, 403, "Not allowed", str(exc), _known_principal(request))
            except NotFound as exc:
                return error_page(request, 404, "Not found", str(exc), _known_principal(request))
            except InvalidInput as exc:
                return error_page(request, 422, "Invalid request", str(exc), _known_principal(request))
            except RequestValidationError as exc:
                where = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors()
                )
                return error_page(request, 422, "Invalid request", where, _known_principal(request))
            except MlmonError as exc:
                return error_page(request, 400, "Request refused", str(exc), _known_principal(request))
            except Exception as exc:
                if database_down(exc):
                    log_database_down(request.method, request.url.path, exc)
                    page = error_page(request, 503, "Database unavailable", "the database is unavailable; retry later")
                    page.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                    return page
                log.exception("unhandled error serving %s %s", request.method, request.url.path)
                return error_page(request, 500, "Internal error", "internal error; see the server log")

        return handler


def _known_principal(request: Request) -> Principal | None:
    found = getattr(request.state, "principal", None)
    return found if isinstance(found, Principal) else None


router = APIRouter(include_in_schema=False, route_class=PageRoute)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _form(request: Request) -> dict[str, str]:
    """A url-encoded form (the standard library parses it; no multipart needed)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput([Issue("body", f"a form is at most {MAX_FORM_BYTES} bytes")], "form too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in fields.items()}


# --- pages --------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    principal = page_principal(request)
    runtime = _runtime(request)
    return _html(pages.overview(runtime, principal, dict(request.query_params)))


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project(project_id: str, request: Request) -> HTMLResponse:
    principal = page_principal(request)
    return _html(pages.project(_runtime(request), principal, project_id))


@router.get("/alerts", response_class=HTMLResponse)
def alerts(request: Request) -> HTMLResponse:
    principal = page_principal(request)
    runtime = _runtime(request)
    params = request.query_params
    filters = pages.AlertFilters.parse(
        states=params.getlist("state"),
        project=params.get("project", ""),
        severity=params.get("severity", ""),
        text=params.get("q", ""),
        muted=params.get("muted", ""),
    )
    found = list_alerts(runtime, principal, state=filters.states, project=filters.project or None,
                        severity=filters.severity or None, limit=10_000)  # fmt: skip
    silences = list_silences(runtime, principal)
    notice = NOTICES.get(params.get("notice", ""), "")
    return _html(pages.alerts(runtime, principal, filters, found, silences, notice))


def _back(form: dict[str, str], notice: str) -> str:
    back = form.get("back") or "/alerts"
    if not back.startswith("/alerts"):
        back = "/alerts"
    back = safe_next(back)
    joiner = "&" if "?" in back else "?"
    return f"{back}{joiner}{urlencode({'notice': notice})}"


@router.post("/alerts/{alert_id}/ack")
async def ack(alert_id: int, request: Request) -> Response:
    check_origin(request)
    principal = page_principal(request)
    form = await _form(request)
    runtime = _runtime(request)
    await run_in_threadpool(ack_alert, alert_id, AckIn(comment=form.get("comment", "")[:1000]), runtime, principal)
    return RedirectResponse(_back(form, "acked"), status_code=303)


def _silence_body(form: dict[str, str], runtime: Runtime, principal: Principal) -> SilenceIn:
    lines = [line.strip() for line in form.get("matchers", "").splitlines() if line.strip()]
    text = form.get("duration", "").strip() or "2h"
    try:
        length = parse_duration(text)
    except ValueError as exc:
        raise InvalidInput([Issue("duration", str(exc), field="duration")], "invalid silence") from None
    if length <= timedelta(0):
        raise InvalidInput([Issue("duration", "a silence lasts a positive time", field="duration")], "invalid silence")
    try:
        return SilenceIn(
            matchers=lines,
            endsAt=runtime.clock.now() + length,
            createdBy=principal.name,
            comment=form.get("comment", "").strip(),
        )
    except ValidationError as exc:
        issues = [Issue(".".join(str(p) for p in e["loc"]), e["msg"], field=str(e["loc"][0])) for e in exc.errors()]
        raise InvalidInput(issues, "invalid silence: a comment and at least one matcher are needed") from None


@router.post("/alerts/silences")
async def silence(request: Request) -> Response:
    check_origin(request)
    principal = page_principal(request)
    form = await _form(request)
    runtime = _runtime(request)
    body = _silence_body(form, runtime, principal)
    await run_in_threadpool(create_silence, body, runtime, principal)
    return RedirectResponse(_back(form, "silenced"), status_code=303)


@router.post("/alerts/silences/{silence_id}/expire")
async def expire(silence_id: str, request: Request) -> Response:
    check_origin(request)
    principal = page_principal(request)
    form = await _form(request)
    await run_in_threadpool(expire_silence, silence_id, _runtime(request), principal)
    return RedirectResponse(_back(form, "expired"), status_code=303)


def _audit_args(request: Request) -> dict[str, Any]:
    params = request.query_params
    return {
        "as_of": params.get("as_of") or None,
        "since": params.get("since") or None,
        "projects": [p for p in params.getlist("project") if p] or None,
    }


def _require_reports(principal: Principal) -> None:
    if not principal.can(Permission.READ_REPORTS):
        raise Forbidden(
            f"{principal.name} (role {principal.role.value}) may not read reports: "
            "sign in with an auditor or admin token"
        )


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request) -> HTMLResponse:
    principal = page_principal(request)
    _require_reports(principal)
    return _html(pages.audit(_runtime(request), principal, **_audit_args(request)))


@router.get("/audit/print", response_class=HTMLResponse)
def audit_print(request: Request) -> HTMLResponse:
    principal = page_principal(request)
    _require_reports(principal)
    return _html(pages.audit_print(_runtime(request), **_audit_args(request)))


@router.get("/audit/export")
def audit_export(request: Request) -> Response:
    principal = page_principal(request)
    _require_reports(principal)
    params = request.query_params
    fmt = params.get("format", "json")
    what = params.get("what", "findings")
    body, media, filename = pages.audit_export(_runtime(request), fmt, what, **_audit_args(request))
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# --- signing in ---------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    params = request.query_params
    # who is signed in already (a bad cookie is simply not shown: this page is where it gets replaced)
    try:
        page_principal(request)
    except MlmonError:
        request.state.principal = None
    return login_page(request, 200, reason=params.get("reason", "")[:300],
                      notice=NOTICES.get(params.get("notice", ""), ""), target=params.get("next", "/"))  # fmt: skip


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    check_origin(request)
    form = await _form(request)
    target = safe_next(form.get("next"))
    token = form.get("token", "").strip()
    runtime = _runtime(request)
    if not token:
        return login_page(request, 401, reason="enter a token (`mlmon token create`)", target=target)
    counter, address = attempts(request), client_address(request)
    try:
        counter.check(address)
    except TooManyAttempts as exc:
        page = login_page(request, 429, reason=str(exc), target=target)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    try:
        principal = await run_in_threadpool(runtime.tokens.authenticate, token, runtime.clock.now())
    except Unauthorized as exc:
        counter.failed(address, f"POST /login: {exc}")
        return login_page(request, 401, reason=str(exc), target=target)
    response = RedirectResponse(target, status_code=303)
    set_session(response, request, token, principal.expires_at)
    return response


@router.api_route("/logout", methods=["GET", "POST"])
def logout(request: Request) -> Response:
    anonymous = _runtime(request).config.auth.anonymous
    target = "/" if anonymous == "viewer" else "/login?notice=signed-out"
    response = RedirectResponse(target, status_code=303)
    clear_session(response, request)
    return response


def install(app: FastAPI) -> None:
    """Serve the UI from `app`: the pages and the stylesheet under /static."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
