"""Who is asking: API tokens and sessions, passwords, roles.

A request carries ``Authorization: Bearer <token>`` (an API token, ``dzr_...``, or a session
token from ``POST /api/v1/sessions``) or the ``dozor_session`` cookie the web UI sets. Either
way it acts for one user in one organisation, with that membership's role; an API token is
further limited by its scope (``read`` or ``write``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from fastapi import Request
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api.problems import Problem
from dozor.store import account_tables as a

ROLES = ("viewer", "member", "admin", "owner")  # each can do what the ones before can
TOKEN_PREFIX = "dzr_"
SESSION_COOKIE = "dozor_session"
SESSION_LIFETIME = timedelta(days=14)
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored: str, given: str) -> bool:
    try:
        return _hasher.verify(stored, given)
    except (VerifyMismatchError, InvalidHashError):
        return False


def digest(token: str) -> str:
    """How a token is stored: long random tokens need no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str = TOKEN_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    org_id: int
    role: str
    scope: str  # "write" | "read"
    via: str  # "token" | "session"
    token_id: int | None = None
    # A sub-account sees only the monitors carrying one of these tags (None: all).
    monitor_tags: tuple[str, ...] | None = None

    @property
    def restricted(self) -> bool:
        return self.monitor_tags is not None

    def sees(self, tags: Sequence[str] | None) -> bool:
        """Whether a monitor with these tags is within this principal's reach."""
        return self.monitor_tags is None or bool(set(self.monitor_tags) & set(tags or ()))

    def can(self, role: str, write: bool = False) -> bool:
        if write and self.scope != "write":
            return False
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, role: str = "viewer", write: bool = False) -> None:
        if not self.can(role, write):
            needed = f"the {role} role" + (" and a write token" if write else "")
            raise Problem(403, f"this needs {needed}")


async def authenticate(connection: AsyncConnection, request: Request) -> Principal:
    """The principal a request acts as; 401 when it shows no valid credentials."""
    token = presented_token(request)
    if not token:
        raise Problem(401, "send Authorization: Bearer <token>",
                      headers={"WWW-Authenticate": "Bearer"})
    now = datetime.now(UTC)
    principal = await (_by_token(connection, token, now) if token.startswith(TOKEN_PREFIX)
                       else _by_session(connection, token, now))
    if principal is None:
        raise Problem(401, "the token is unknown, revoked or expired",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return principal


def presented_token(request: Request) -> str | None:
    """The token a request carries: a bearer token, else the session cookie."""
    return bearer_token(request) or request.cookies.get(SESSION_COOKIE)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def _by_token(connection: AsyncConnection, token: str, now: datetime
                    ) -> Principal | None:
    t, m = a.api_tokens.c, a.memberships.c
    row = (await connection.execute(
        select(t.id, t.user_id, t.org_id, t.scope, t.expires_at, t.last_used_at, m.role,
               m.monitor_tags)
        .join(a.memberships, (m.user_id == t.user_id) & (m.org_id == t.org_id))
        .where(t.token_hash == digest(token), t.revoked_at.is_(None)))).first()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        await connection.execute(update(a.api_tokens).where(t.id == row.id)
                                 .values(last_used_at=now))  # at most once a minute
    return Principal(row.user_id, row.org_id, row.role, row.scope, "token", row.id,
                     _tags(row.monitor_tags))


async def _by_session(connection: AsyncConnection, token: str, now: datetime
                      ) -> Principal | None:
    s, m = a.sessions.c, a.memberships.c
    row = (await connection.execute(
        select(s.user_id, s.org_id, s.expires_at, m.role, m.monitor_tags)
        .join(a.memberships, (m.user_id == s.user_id) & (m.org_id == s.org_id))
        .where(s.token_hash == digest(token)))).first()
    if row is None or row.expires_at <= now:
        return None
    return Principal(row.user_id, row.org_id, row.role, "write", "session",
                     monitor_tags=_tags(row.monitor_tags))


def _tags(stored: Any) -> tuple[str, ...] | None:
    return None if stored is None else tuple(str(tag) for tag in stored)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def public_user(row: Any) -> dict[str, Any]:
    """A user as the API shows it: never a hash or a secret."""
    return {"id": row.id, "email": row.email, "name": row.name,
            "email_confirmed": row.email_confirmed_at is not None,
            "two_factor": row.totp_enabled_at is not None,
            "created_at": row.created_at.isoformat()}
