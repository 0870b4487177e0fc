"""HTTP for collectors: one factory for clients, and errors translated at the boundary.

httpx.TransportError / TimeoutException -> SourceUnavailable; a non-2xx answer or a body that is
not JSON -> SourceError carrying the status and the start of the body, so the failure names the
source's own message.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from monitor import __version__
from monitor.core.errors import SourceError, SourceUnavailable

USER_AGENT = f"mlmon/{__version__}"
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
"""A source answering more than this is refused while reading, before it costs memory."""


@dataclass(frozen=True)
class HttpFactory:
    """Builds httpx clients with the run's timeout. Tests may pass a transport."""

    timeout: float = 30.0
    transport: httpx.BaseTransport | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)

    def client(
        self,
        *,
        verify: bool | str = True,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        base_url: str = "",
    ) -> httpx.Client:
        all_headers = {"User-Agent": USER_AGENT, **self.extra_headers, **(headers or {})}
        return httpx.Client(
            timeout=self.timeout,
            verify=tls_context(verify) if isinstance(verify, str) else verify,
            headers=all_headers,
            auth=auth,
            base_url=base_url,
            transport=self.transport,
            follow_redirects=True,
        )

    def with_timeout(self, timeout: float) -> HttpFactory:
        return HttpFactory(timeout, self.transport, self.extra_headers)


def tls_context(ca_file: str) -> ssl.SSLContext:
    """A verifying TLS context trusting `ca_file` (httpx 0.28 deprecates `verify=<path>`)."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise SourceError(f"cannot load the CA file {ca_file}: {exc}") from exc


def snippet(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def send(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send a request; raise SourceUnavailable when the source cannot be reached."""
    try:
        return client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise SourceUnavailable(f"{method} {_shown(client, url)} timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise SourceUnavailable(f"{method} {_shown(client, url)} failed: {exc or type(exc).__name__}") from exc


def send_bounded(client: httpx.Client, method: str, url: str, max_bytes: int, **kwargs: Any) -> httpx.Response:
    """Send a request and read its body streamed, refusing it past `max_bytes` (a SourceError),
    so a 40 MB answer never sits whole in memory."""
    where = f"{method} {_shown(client, url)}"
    try:
        with client.stream(method, url, **kwargs) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise SourceError(f"{where} answered {int(declared):,} bytes; the limit is {max_bytes:,}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise SourceError(f"{where} answered more than {max_bytes:,} bytes; the limit is {max_bytes:,}")
                chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise SourceUnavailable(f"{where} timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise SourceUnavailable(f"{where} failed: {exc or type(exc).__name__}") from exc
    except httpx.DecodingError as exc:
        raise SourceError(f"{where}: the body could not be decoded ({type(exc).__name__})") from exc
    response._content = b"".join(chunks)  # the body, read once; .text and .content work as usual
    return response


def request_json(client: httpx.Client, method: str, url: str, *, max_bytes: int | None = None, **kwargs: Any) -> Any:
    """Send a request and parse a JSON answer; any non-2xx is a SourceError with the body's start.
    With `max_bytes`, the body is read streamed and refused past that size."""
    if max_bytes is None:
        response = send(client, method, url, **kwargs)
    else:
        response = send_bounded(client, method, url, max_bytes, **kwargs)
    where = f"{method} {_shown(client, url)}"
    if response.status_code >= 500 or response.status_code == 429:
        raise SourceUnavailable(f"{where} answered {response.status_code}: {snippet(response.text)}")
    if not response.is_success:
        raise SourceError(f"{where} answered {response.status_code}: {snippet(response.text)}")
    return parse_json(response, where)


def parse_json(response: httpx.Response, where: str) -> Any:
    try:
        return json.loads(response.content)
    except RecursionError:
        raise SourceError(f"{where} returned JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"{where} did not return JSON ({snippet(str(exc), 200)}): {snippet(response.text)}") from exc


def _shown(client: httpx.Client, url: str) -> str:
    if url.startswith(("http://", "https://")):
        return _redact(url)
    return _redact(str(client.base_url).rstrip("/") + "/" + url.lstrip("/"))


def _redact(url: str) -> str:
    """A URL fit for error messages (which are stored and shown): no credentials, no query values,
    since APIs often take keys there."""
    parsed = httpx.URL(url)
    if parsed.userinfo:
        parsed = parsed.copy_with(username=None, password=None)
    if parsed.query:
        hidden = "&".join(f"{key}=***" for key in parsed.params)
        return f"{parsed.copy_with(query=None)}?{hidden}"
    return str(parsed)


def headers_from_env(template: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """Expand `${VAR}` in header values from the environment; a missing variable is an error."""
    out: dict[str, str] = {}
    for name, value in template.items():
        out[name] = expand_env(value, env, f"header {name}")
    return out


def expand_env(value: str, env: Mapping[str, str], what: str) -> str:
    def replace(match: re.Match[str]) -> str:
        var = match.group(1)
        if var not in env:
            raise SourceError(f"environment variable {var} (used in {what}) is not set")
        return env[var]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", replace, value)
