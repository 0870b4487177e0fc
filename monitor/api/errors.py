"""One place that maps errors to HTTP answers. No stack trace ever reaches a client."""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.api.failures import RETRY_AFTER_SECONDS, database_down, log_database_down
from monitor.auth.attempts import TooManyAttempts
from monitor.auth.tokens import Forbidden, Unauthorized
from monitor.core.errors import ConfigError, InvalidInput, NotFound, TooLarge
from monitor.ingest import jsonable_issues

log = logging.getLogger("mlmon.api")


def error_body(status: int, message: str, issues: list[dict[str, object]] | None = None) -> JSONResponse:
    body: dict[str, object] = {"status": status, "message": message}
    if issues:
        body["issues"] = issues
    return JSONResponse({"error": body}, status_code=status)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method the API documents at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for template, item in app.openapi().get("paths", {}).items():
        if _template(template).fullmatch(path):
            methods |= {m.upper() for m in item if m in ("get", "put", "post", "delete", "patch")}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


@lru_cache(maxsize=256)
def _template(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)))


def install(app: FastAPI) -> None:
    @app.exception_handler(TooLarge)
    async def _too_large(_request: Request, exc: TooLarge) -> JSONResponse:
        return error_body(413, exc.summary, jsonable_issues(exc.issues))

    @app.exception_handler(InvalidInput)
    async def _invalid(_request: Request, exc: InvalidInput) -> JSONResponse:
        return error_body(422, exc.summary, jsonable_issues(exc.issues))

    @app.exception_handler(ConfigError)
    async def _config(_request: Request, exc: ConfigError) -> JSONResponse:
        return error_body(422, "configuration refused", jsonable_issues(exc.issues))

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_request: Request, exc: Unauthorized) -> JSONResponse:
        response = error_body(401, str(exc))
        response.headers["WWW-Authenticate"] = 'Bearer realm="mlmon"'
        return response

    @app.exception_handler(TooManyAttempts)
    async def _too_many(_request: Request, exc: TooManyAttempts) -> JSONResponse:
        response = error_body(429, str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(Forbidden)
    async def _forbidden(_request: Request, exc: Forbidden) -> JSONResponse:
        return error_body(403, str(exc))

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return error_body(404, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        issues: list[dict[str, object]] = [
            {"where": ".".join(str(p) for p in err["loc"]), "message": err["msg"]} for err in exc.errors()
        ]
        return error_body(422, "invalid request", issues)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error_body(exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            methods = allowed_methods(app, request.url.path)
            if methods:
                response.headers["Allow"] = ", ".join(methods)
        return response

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not database_down(exc):
            log.exception("database error serving %s %s", request.method, request.url.path)
            return error_body(500, "internal error; see the server log")
        log_database_down(request.method, request.url.path, exc)
        response = error_body(503, "the database is unavailable; retry later")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    for kind in (sa_exc.DBAPIError, sa_exc.DisconnectionError, sa_exc.TimeoutError):
        app.add_exception_handler(kind, _database)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error serving %s %s", request.method, request.url.path)
        return error_body(500, "internal error; see the server log")
