"""Two-factor log-in with TOTP codes, and recovery codes for a lost authenticator.

Turning it on takes two steps: ``POST /account/two-factor`` gives a secret (and an
``otpauth://`` URI for a QR code), and a code from the authenticator app confirms it. The
confirmation answers with ten recovery codes, shown this once and stored hashed; each
works once, at log-in instead of a code, or to turn two-factor log-in off.
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import UTC, datetime
from typing import Any

import pyotp
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api.deps import Caller, Connection
from dozor.api.problems import Problem, invalid
from dozor.api.ratelimit import RateLimit, enforce
from dozor.api.security import client_ip, digest
from dozor.privacy import audit
from dozor.store import account_tables as a
from dozor.store import accounts

router = APIRouter(tags=["account"])
RECOVERY_CODES = 10
# Codes guessed with a stolen session.
STOP_BY_USER = RateLimit("two_factor_stop_by_user", 10, 900.0)


class Code(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=4, max_length=10)


class SecondFactor(BaseModel):
    """A TOTP code or a recovery code (exactly one)."""

    model_config = ConfigDict(extra="forbid")
    code: str | None = Field(None, max_length=10, description="a code from your app")
    recovery_code: str | None = Field(None, max_length=40,
                                      description="one of your recovery codes")

    @model_validator(mode="after")
    def _one(self) -> SecondFactor:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("give code or recovery_code")
        return self


def new_recovery_code() -> str:
    """80 random bits as four groups of base32 letters and digits.

    >>> len(new_recovery_code()), new_recovery_code().count("-")
    (19, 3)
    """
    raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def _recovery_hash(user_id: int, code: str) -> str:
    # Hyphens, spaces and case are how people copy codes, not part of them.
    return digest(f"{user_id}:{re.sub(r'[^a-z2-7]', '', code.lower())}")


def totp_ok(user: Any, code: str | None) -> bool:
    return code is not None and user.totp_secret is not None and \
        pyotp.TOTP(user.totp_secret).verify(code.strip(), valid_window=1)


async def use_recovery_code(conn: AsyncConnection, user_id: int, code: str,
                            now: datetime) -> bool:
    """Spend one recovery code; False if it is not one of the user's unused codes."""
    r = a.recovery_codes.c
    spent = await conn.execute(update(a.recovery_codes).where(
        r.user_id == user_id, r.code_hash == _recovery_hash(user_id, code),
        r.used_at.is_(None)).values(used_at=now))
    return bool(spent.rowcount)


async def recovery_codes_left(conn: AsyncConnection, user_id: int) -> int:
    r = a.recovery_codes.c
    rows = await conn.execute(select(r.code_hash).where(r.user_id == user_id,
                                                        r.used_at.is_(None)))
    return len(rows.all())


async def second_factor_ok(conn: AsyncConnection, user: Any, code: str | None,
                           recovery_code: str | None, now: datetime) -> bool:
    """Whether the second factor given passes (always, when two-factor log-in is off)."""
    if user.totp_enabled_at is None:
        return True
    if recovery_code is not None:
        return await use_recovery_code(conn, user.id, recovery_code, now)
    return totp_ok(user, code)


@router.post("/account/two-factor")
async def start_two_factor(caller: Caller, conn: Connection) -> dict[str, str]:
    """A new TOTP secret; confirm it with a code to turn two-factor log-in on."""
    caller.require("viewer", write=True)
    user = await accounts.user(conn, caller.user_id)
    if user.totp_enabled_at is not None:
        raise Problem(409, "two-factor log-in is already on")
    secret = pyotp.random_base32()
    await conn.execute(update(a.users).where(a.users.c.id == user.id)
                       .values(totp_secret=secret))
    return {"secret": secret,
            "otpauth_uri": pyotp.TOTP(secret).provisioning_uri(name=user.email,
                                                               issuer_name="Dozor")}


@router.post("/account/two-factor/confirm")
async def confirm_two_factor(body: Code, request: Request, caller: Caller,
                             conn: Connection) -> dict[str, list[str]]:
    """Turn two-factor log-in on with a code from the app. The answer holds your recovery
    codes: shown this once, keep them somewhere safe."""
    caller.require("viewer", write=True)
    user = await accounts.user(conn, caller.user_id)
    if user.totp_enabled_at is not None:
        raise Problem(409, "two-factor log-in is already on")
    if not totp_ok(user, body.code):
        raise invalid([("code", "wrong code")])
    now = datetime.now(UTC)
    codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
    await conn.execute(delete(a.recovery_codes).where(a.recovery_codes.c.user_id == user.id))
    await conn.execute(insert(a.recovery_codes), [
        {"user_id": user.id, "code_hash": _recovery_hash(user.id, code), "created_at": now}
        for code in codes])
    await conn.execute(update(a.users).where(a.users.c.id == user.id)
                       .values(totp_enabled_at=now))
    await audit.record(conn, "totp_enabled", org_id=caller.org_id, user_id=caller.user_id,
                       ip=client_ip(request))
    return {"recovery_codes": codes}


@router.delete("/account/two-factor", status_code=204)
async def stop_two_factor(body: SecondFactor, request: Request, caller: Caller,
                          conn: Connection) -> None:
    """Turn two-factor log-in off: needs a current code (or a recovery code)."""
    caller.require("viewer", write=True)
    await enforce(request, (STOP_BY_USER, f"user:{caller.user_id}"))
    user = await accounts.user(conn, caller.user_id)
    if user.totp_enabled_at is None:
        raise Problem(409, "two-factor log-in is off already")
    if not await second_factor_ok(conn, user, body.code, body.recovery_code,
                                  datetime.now(UTC)):
        field = "code" if body.code is not None else "recovery_code"
        raise invalid([(field, "wrong or used code")])
    await conn.execute(update(a.users).where(a.users.c.id == user.id)
                       .values(totp_secret=None, totp_enabled_at=None))
    await conn.execute(delete(a.recovery_codes).where(a.recovery_codes.c.user_id == user.id))
    await audit.record(conn, "totp_disabled", org_id=caller.org_id, user_id=caller.user_id,
                       ip=client_ip(request))
