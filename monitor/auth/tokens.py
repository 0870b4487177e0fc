"""API tokens: created once and shown once; only a SHA-256 hash is kept.

Tokens carry 256 bits of randomness, so a fast hash is the right one (a slow password hash buys
nothing against guessing a 256-bit secret and would cost every request).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from monitor.auth.model import Principal, Role
from monitor.auth.tables import api_tokens
from monitor.core.errors import InvalidInput, Issue, MlmonError
from monitor.store.db import write_tx

PREFIX = "mlmon_"
_SHAPE = re.compile(r"mlmon_[A-Za-z0-9_-]{43}")
CACHE_SECONDS = 5.0
TOUCH_EVERY = timedelta(minutes=1)


class Unauthorized(MlmonError):
    """No valid credentials (401)."""


class Forbidden(MlmonError):
    """Valid credentials, but not allowed (403)."""


def _invalid(field: str, why: str) -> InvalidInput:
    return InvalidInput([Issue(field, why, field=field)], "invalid token")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is stored about a token (never the token itself)."""

    id: int
    name: str
    role: Role
    projects: tuple[str, ...]
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def principal(self) -> Principal:
        return Principal(self.name, self.role, frozenset(self.projects), self.id, self.expires_at)


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        row.id,
        row.name,
        Role(row.role),
        tuple(row.projects),
        row.prefix,
        row.created_at,
        row.created_by,
        row.expires_at,
        row.revoked_at,
        row.last_used_at,
    )


class TokenStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: dict[str, tuple[float, TokenInfo | None]] = {}
        self._touched: dict[int, datetime] = {}
        self._lock = threading.Lock()

    def create(
        self,
        name: str,
        role: Role,
        projects: Sequence[str],
        created_by: str,
        now: datetime,
        expires_at: datetime | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new token: returns the secret (shown once) and what is stored about it."""
        if not name.strip():
            raise InvalidInput([Issue("name", "a token needs a name", field="name")], "invalid token")
        if role in (Role.AUDITOR, Role.ADMIN) and projects:
            raise InvalidInput(
                [Issue("projects", f"an {role.value} token cannot be limited to projects")], "invalid token"
            )
        if role is Role.OWNER and not projects:
            raise InvalidInput([Issue("projects", "an owner token needs the projects it owns")], "invalid token")
        if expires_at is not None and expires_at <= now:
            raise InvalidInput([Issue("expires", "the expiry must be in the future", field="expires")], "invalid token")
        token = PREFIX + secrets.token_urlsafe(32)
        with write_tx(self.engine) as conn:
            if conn.execute(select(api_tokens.c.id).where(api_tokens.c.name == name)).first():
                raise _invalid("name", f"a token named {name!r} exists")
            conn.execute(
                insert(api_tokens).values(
                    name=name,
                    role=role.value,
                    projects=sorted(set(projects)),
                    token_hash=hash_token(token),
                    prefix=token[: len(PREFIX) + 4],
                    created_at=now,
                    created_by=created_by,
                    expires_at=expires_at,
                )
            )
        info = self.get(name)
        assert info is not None
        return token, info

    def get(self, name: str) -> TokenInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).first()
        return _info(row) if row else None

    def all(self) -> list[TokenInfo]:
        with self.engine.connect() as conn:
            return [_info(r) for r in conn.execute(select(api_tokens).order_by(api_tokens.c.name))]

    def revoke(self, name: str, now: datetime) -> bool:
        with write_tx(self.engine) as conn:
            done = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        with self._lock:
            self._cache.clear()
        return bool(done.rowcount)

    def authenticate(self, token: str, now: datetime) -> Principal:
        """The principal of a token, or Unauthorized saying why (never echoing the token)."""
        if not _SHAPE.fullmatch(token):
            raise Unauthorized("malformed token: expected mlmon_ followed by 43 characters")
        digest = hash_token(token)
        info = self._lookup(digest)
        if info is None:
            raise Unauthorized("unknown token")
        if info.revoked_at is not None:
            raise Unauthorized(f"token {info.name!r} was revoked at {info.revoked_at.isoformat()}")
        if info.expires_at is not None and info.expires_at <= now:
            raise Unauthorized(f"token {info.name!r} expired at {info.expires_at.isoformat()}")
        self._touch(info, now)
        return info.principal()

    def _lookup(self, digest: str) -> TokenInfo | None:
        moment = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
            if cached is not None and moment - cached[0] < CACHE_SECONDS:
                return cached[1]
        with self.engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == digest)).first()
        info = _info(row) if row else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (moment, info)
        return info

    def _touch(self, info: TokenInfo, now: datetime) -> None:
        """Record use at most once a minute per token: a write per request would serialise reads."""
        with self._lock:
            last = self._touched.get(info.id)
            if last is not None and now - last < TOUCH_EVERY:
                return
            self._touched[info.id] = now
        with write_tx(self.engine) as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.id == info.id).values(last_used_at=now))
