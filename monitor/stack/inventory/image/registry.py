"""Reading an image from a registry through the distribution API, with httpx.

Authentication follows the registry's challenge: a `Bearer` challenge is answered by asking its
realm for a token (anonymously, or with the username and password from the environment), a
`Basic` one with the username and password; a token from the environment is sent as is. Tokens
are cached per scope and never logged. Redirects (blobs served from storage) are followed, and
httpx drops `Authorization` when one leads to another host. Every manifest and blob is checked
against its digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from monitor.stack.inventory.image.layers import LayerHandle
from monitor.stack.inventory.image.manifests import (
    ACCEPT,
    ImageInputError,
    ImageRef,
    LayerRef,
    choose_platform,
    is_index,
    layers_of,
    platform_of,
)
from monitor.stack.inventory.image.streams import CHUNK, DigestReader, LayerStream

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """A registry step failed: `step` names it (authenticate, resolve, fetch config, read layer)."""

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(f"{step}: {message}")


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    token: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str = "MLMON_REGISTRY") -> Credentials:
        return cls(env.get(f"{prefix}_USERNAME"), env.get(f"{prefix}_PASSWORD"), env.get(f"{prefix}_TOKEN"))


@dataclass
class RegistryClient:
    client: httpx.Client
    ref: ImageRef
    credentials: Credentials = field(default_factory=Credentials)
    _auth: str | None = None

    @property
    def base(self) -> str:
        scheme = "http" if self.ref.plain_http else "https"
        return f"{scheme}://{self.ref.registry}/v2/{self.ref.repository}"

    def __post_init__(self) -> None:
        if self.credentials.token:
            self._auth = f"Bearer {self.credentials.token}"

    def _send(self, url: str, step: str, accept: str | None = None, stream: bool = False) -> httpx.Response:
        headers = {"Accept": accept} if accept else {}
        for attempt in range(2):
            if self._auth:
                headers["Authorization"] = self._auth
            request = self.client.build_request("GET", url, headers=headers)
            try:
                response = self.client.send(request, stream=stream, follow_redirects=True)
            except httpx.HTTPError as exc:
                raise RegistryError(step, f"cannot reach {self.ref.registry}: {type(exc).__name__}: {exc}") from None
            if response.status_code == 401 and attempt == 0:
                challenge = response.headers.get("WWW-Authenticate", "")
                response.close()
                self._authenticate(challenge)
                continue
            if response.status_code >= 400:
                detail = _error_text(response)
                response.close()
                if response.status_code == 401:
                    raise RegistryError(
                        "authenticate",
                        f"{self.ref.registry} refused the credentials (401{detail}); set MLMON_REGISTRY_TOKEN or "
                        "MLMON_REGISTRY_USERNAME/MLMON_REGISTRY_PASSWORD (or the source's *_env settings)",
                    )
                raise RegistryError(step, f"{url} answered {response.status_code}{detail}")
            return response
        raise RegistryError("authenticate", f"{self.ref.registry} keeps asking for credentials")

    def _authenticate(self, challenge: str) -> None:
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE.findall(params_text))
        user, password = self.credentials.username, self.credentials.password
        if scheme.lower() == "basic":
            if user is None or password is None:
                raise RegistryError(
                    "authenticate",
                    f"{self.ref.registry} asks for a username and password (401, Basic); set "
                    "MLMON_REGISTRY_USERNAME and MLMON_REGISTRY_PASSWORD",
                )
            self._auth = _basic(user, password)
            return
        if scheme.lower() != "bearer" or "realm" not in params:
            raise RegistryError("authenticate", f"{self.ref.registry} answered 401 without a usable challenge")
        query = {"service": params.get("service", "")}
        query["scope"] = params.get("scope") or f"repository:{self.ref.repository}:pull"
        auth = httpx.BasicAuth(user, password) if user is not None and password is not None else None
        try:
            answer = self.client.get(params["realm"], params=query, auth=auth, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise RegistryError("authenticate", f"cannot reach the token service: {type(exc).__name__}") from None
        if answer.status_code >= 400:
            raise RegistryError("authenticate", f"the token service refused (HTTP {answer.status_code})")
        try:
            doc = answer.json()
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError("authenticate", "the token service answered without a token")
        self._auth = f"Bearer {token}"

    def _document(self, url: str, step: str, digest: str | None) -> tuple[dict[str, Any], str, str]:
        response = self._send(url, step, accept=ACCEPT)
        body = response.content[: MAX_MANIFEST_BYTES + 1]
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryError(step, f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes")
        computed = f"sha256:{hashlib.sha256(body).hexdigest()}"
        if digest and digest.startswith("sha256:") and computed != digest:
            raise RegistryError(step, f"the manifest does not match its digest {digest}")
        try:
            doc = json.loads(body)
        except ValueError:
            raise RegistryError(step, "the manifest is not JSON") from None
        if not isinstance(doc, dict):
            raise RegistryError(step, "the manifest is not a JSON object")
        return doc, response.headers.get("Content-Type", "").split(";")[0].strip(), computed

    def resolve(self, platform: str) -> tuple[list[LayerRef], str, str | None]:
        """(layers, manifest digest, platform) of the image."""
        where = str(self.ref)
        doc, content_type, digest = self._document(
            f"{self.base}/manifests/{self.ref.reference}", "resolve manifest", self.ref.digest
        )
        if is_index(doc, content_type):
            try:
                entry = choose_platform(doc, platform, where)
            except ImageInputError as exc:
                raise RegistryError("resolve manifest", str(exc)) from None
            doc, content_type, digest = self._document(
                f"{self.base}/manifests/{entry['digest']}", "resolve manifest", str(entry["digest"])
            )
        try:
            layers = layers_of(doc, where)
        except ImageInputError as exc:
            raise RegistryError("resolve manifest", str(exc)) from None
        found_platform = None
        config = doc.get("config")
        if isinstance(config, Mapping) and isinstance(config.get("digest"), str):
            blob = self._send(f"{self.base}/blobs/{config['digest']}", "fetch config").content
            if hashlib.sha256(blob).hexdigest() != str(config["digest"]).removeprefix("sha256:"):
                raise RegistryError("fetch config", f"the config does not match its digest {config['digest']}")
            try:
                found_platform = platform_of(json.loads(blob))
            except (ValueError, AttributeError):
                raise RegistryError("fetch config", "the image config is not a JSON object") from None
        return layers, digest, found_platform

    def layer(self, ref: LayerRef) -> RegistryLayer:
        return RegistryLayer(self, ref)


@dataclass
class RegistryLayer:
    registry: RegistryClient
    ref: LayerRef

    @property
    def name(self) -> str:
        return f"layer {self.ref.digest}"

    def open(self) -> LayerHandle:
        response = self.registry._send(
            f"{self.registry.base}/blobs/{self.ref.digest}", f"read layer {self.ref.digest}", stream=True
        )
        chunks: Iterator[bytes] = response.iter_raw(CHUNK)
        raw = DigestReader(_wrapped(chunks, self.name), self.ref.digest, self.name, response.close)
        return LayerStream(raw, self.name, self.ref.media_type)


def _wrapped(chunks: Iterator[bytes], name: str) -> Iterator[bytes]:
    try:
        yield from chunks
    except httpx.HTTPError as exc:
        raise RegistryError(f"read {name}", f"the download broke off: {type(exc).__name__}") from None


def _error_text(response: httpx.Response) -> str:
    try:
        response.read()
        errors = response.json().get("errors") or []
        codes = [f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, Mapping)]
        return f" ({'; '.join(codes)})" if codes else ""
    except (ValueError, AttributeError, httpx.HTTPError):
        return ""


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
