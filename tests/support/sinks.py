"""A webhook sink: a real local HTTP server that records every request (headers and body) and
answers as the test says, including not listening at all.

    sink = WebhookSink()            # a free port, not listening yet: connections are refused
    sink.open()                     # now it listens and answers 200
    sink.answer(500, "fail")        # every request from now on gets a 500
    sink.answer(400, {"error": "unknown field"})
    sink.answer(200, delay=2.0)     # answer late (past the sender's timeout: it sees a timeout)
    sink.close()                    # the port is closed again (connection refused)
    sink.wait_for(2)                # two requests arrived (generous timeout)

The server speaks HTTP/1.0, so every request has its own connection and a closed sink really
refuses the next attempt instead of serving it on a kept-alive connection.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.http_server import Answer, Seen
from tests.support.peers import free_port


@dataclass(frozen=True)
class Received(Seen):
    """One request the sink received, and the status it answered."""

    status: int = 200

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookSink:
    def __init__(self, port: int | None = None, path: str = "/hook") -> None:
        self.port = port or free_port()
        self.path = path
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._answer = Answer({"status": "ok"}, 200)
        self._delay = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    def open(self) -> WebhookSink:
        """Listen on the sink's port (answering with the current answer, 200 unless told otherwise)."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-sink", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening: from now on connections to the port are refused."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def answer(self, status: int, body: Any = None, delay: float = 0.0) -> None:
        """Answer every following request with this status (and body; JSON unless str/bytes), after
        `delay` seconds. The request is recorded when it arrives, whatever happens to the answer."""
        with self._lock:
            self._answer = Answer({"status": "ok"} if body is None else body, status)
            self._delay = delay

    def accept(self) -> None:
        self.answer(200)

    def __enter__(self) -> WebhookSink:
        return self.open()

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- what arrived --------------------------------------------------------------------------

    def requests(self, status: int | None = None) -> list[Received]:
        """Every request received (optionally only those answered with `status`), oldest first."""
        with self._lock:
            return [r for r in self._received if status is None or r.status == status]

    def accepted(self) -> list[Received]:
        """Requests answered with a 2xx: the notifications the receiver actually took."""
        return [r for r in self.requests() if 200 <= r.status < 300]

    def wait_for(self, count: int, timeout: float = 30.0, accepted: bool = True) -> list[Received]:
        """Wait until at least `count` requests (accepted ones by default) arrived; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.accepted() if accepted else self.requests()
            if len(found) >= count:
                return found
            time.sleep(0.02)
        found = self.accepted() if accepted else self.requests()
        raise AssertionError(
            f"timed out after {timeout}s waiting for {count} request(s) at {self.url}; got {len(found)}"
        )

    # --- server -------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with sink._lock:
                    answer, delay = sink._answer, sink._delay
                    sink._received.append(
                        Received(
                            self.command,
                            self.path.split("?", 1)[0],
                            dict(self.headers.items()),
                            body,
                            answer.status,
                        )
                    )
                if delay:
                    time.sleep(delay)
                payload, content_type = answer.encoded()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up waiting (a timeout test): nothing to answer

            do_GET = _serve
            do_POST = _serve
            do_PUT = _serve

            def log_message(self, *_: object) -> None:
                pass

        return Handler
