"""Local HTTP peers for the spend tests: the shared LocalHttpServer, remembering query strings.

The shared server records each request's path without its query; OpenCost and Prometheus take
their arguments in the query, so this subclass keeps the full request target as well.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.support.http_server import LocalHttpServer


class QueryRecordingServer(LocalHttpServer):
    def __init__(self) -> None:
        self.targets: list[str] = []
        super().__init__()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler()
        server = self

        class Handler(base):  # type: ignore[valid-type,misc]
            def _record_then_serve(self) -> None:
                with server._lock:
                    server.targets.append(self.path)
                base._serve(self)

            do_GET = _record_then_serve
            do_POST = _record_then_serve

        return Handler

    def queries(self, path: str) -> list[dict[str, list[str]]]:
        with self._lock:
            targets = list(self.targets)
        return [parse_qs(urlsplit(t).query) for t in targets if urlsplit(t).path == path]

    def last_query(self) -> dict[str, list[str]]:
        with self._lock:
            return parse_qs(urlsplit(self.targets[-1]).query)
