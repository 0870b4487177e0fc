"""How a source reaches an HTTP endpoint: its URL, headers, credentials from the environment, TLS.

Shared by every HTTP source kind so the same params mean the same everywhere, and so credentials are
read from the environment at run time (never stored in the configuration).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from pydantic import Field, field_validator

from collectors.base import CollectContext, Params, env_value
from monitor.http import expand_env, headers_from_env


class BasicAuth(Params):
    username_env: str = Field(description="environment variable holding the user name")
    password_env: str = Field(description="environment variable holding the password")


class HttpAccess(Params):
    url: str = Field(description="http:// or https:// URL; may use ${ENV_VAR}, e.g. http://${MLMON_LISTEN}/")
    headers: dict[str, str] = Field(default_factory=dict, description="values may use ${ENV_VAR}")
    basic_auth: BasicAuth | None = None
    verify_tls: bool = True
    ca_file: str | None = Field(default=None, description="CA bundle to verify the server with")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    def resolved_url(self, env: Mapping[str, str]) -> str:
        """The URL with `${VAR}` expanded from the environment at run time (mlmon sets MLMON_LISTEN)."""
        return expand_env(self.url, env, "url")

    def client(
        self, ctx: CollectContext, extra_headers: Mapping[str, str] | None = None, base: bool = True
    ) -> httpx.Client:
        """A client for this endpoint (`base`: relative requests resolve against `url`)."""
        auth = None
        if self.basic_auth is not None:
            auth = (
                env_value(ctx.env, self.basic_auth.username_env, "basic auth user"),
                env_value(ctx.env, self.basic_auth.password_env, "basic auth password"),
            )
        verify: bool | str = self.ca_file if (self.verify_tls and self.ca_file) else self.verify_tls
        headers = {**headers_from_env(self.headers, ctx.env), **(extra_headers or {})}
        return ctx.http.client(
            verify=verify,
            headers=headers,
            auth=auth,
            base_url=self.resolved_url(ctx.env).rstrip("/") if base else "",
        )
