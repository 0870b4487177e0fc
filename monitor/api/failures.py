"""The API under failure: the database down answers 503 with `Retry-After`, logged in one line;
and a crash barrier so that no request ends in a dropped connection or a doubled traceback.

Starlette hands an exception that no handler claims to its ServerErrorMiddleware, which answers
500 and then re-raises it, so uvicorn logs it a second time and may drop the connection when the
response had started. The barrier sits inside that middleware: it answers and logs once.
"""

from __future__ import annotations

import logging

import orjson
from sqlalchemy import exc as sa_exc
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("mlmon.api")

RETRY_AFTER_SECONDS = 5
_UNREACHABLE = (sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError)
_DOWN_SQLSTATE_CLASSES = ("08", "53", "57")
"""PostgreSQL: connection exception, insufficient resources, operator intervention (shutdown)."""
_DOWN_WORDS = ("connection", "server closed", "unable to open", "database is locked", "disk i/o", "timeout")


def database_down(exc: BaseException) -> bool:
    """The database cannot be reached or dropped the connection: a reason to retry, not a bug.
    An OperationalError is also what SQLite says for a missing table, which is a bug (500)."""
    if isinstance(exc, _UNREACHABLE):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate:
            return str(sqlstate)[:2] in _DOWN_SQLSTATE_CLASSES
        text = str(exc.orig).lower()
        return any(word in text for word in _DOWN_WORDS)
    return False


def first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


def log_database_down(method: str, path: str, exc: BaseException) -> None:
    log.error("database unavailable serving %s %s: %s: %s", method, path, type(exc).__name__, first_line(exc))


class CrashBarrier:
    """The last handler of every HTTP request: anything that escaped is answered here, once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            method, path = scope.get("method", "?"), scope.get("path", "?")
            if database_down(exc):
                log_database_down(method, path, exc)
                status, message = 503, "the database is unavailable; retry later"
            else:
                log.exception("unhandled error serving %s %s", method, path)
                status, message = 500, "internal error; see the server log"
            if started:
                return  # the status line is gone; end the body instead of dropping the connection
            body = orjson.dumps({"error": {"status": status, "message": message}})
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if status == 503:
                headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
