"""Passwords: reset by an emailed token, setting one by an invitation's token, changing it.

A reset token (and an invitation's) is a long random string sent by email, stored as its
SHA-256 only, good once and for a short time. Asking for a reset answers the same whether
or not the address has an account, so the route tells nobody which addresses do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api.deps import AppSettings, Caller, Connection
from dozor.api.fields import Email, Language, Password
from dozor.api.problems import invalid
from dozor.api.ratelimit import RateLimit, enforce
from dozor.api.security import (
    check_password,
    client_ip,
    digest,
    hash_password,
    new_token,
    presented_token,
)
from dozor.notify import account_mail
from dozor.privacy import audit
from dozor.settings import Settings
from dozor.store import account_tables as a
from dozor.store import accounts

router = APIRouter(tags=["account"])
RESET_LIFETIME = timedelta(hours=1)
INVITE_LIFETIME = timedelta(days=7)
RESET_BY_IP = RateLimit("reset_by_ip", 10, 3600.0)
RESET_BY_EMAIL = RateLimit("reset_by_email", 3, 3600.0)
CONFIRM_BY_IP = RateLimit("reset_confirm_by_ip", 30, 3600.0)
# Current passwords guessed with a stolen session.
CHANGE_BY_USER = RateLimit("password_change_by_user", 10, 900.0)
SAME_ANSWER = "if an account has this address, a message with a reset token is on its way"


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    language: Language = "en"


class ResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=200, description="from the email")
    password: Password


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(max_length=200)
    new_password: Password


async def issue_token(conn: AsyncConnection, user_id: int, purpose: str,
                      lifetime: timedelta, now: datetime) -> str:
    """A one-time token for the user, to be emailed; only its hash is kept."""
    token = new_token("dze_")
    await conn.execute(insert(a.email_tokens).values(
        token_hash=digest(token), user_id=user_id, purpose=purpose, created_at=now,
        expires_at=now + lifetime))
    return token


def link(settings: Settings, token: str) -> str:
    """The line with the page that takes the token, when Dozor knows its address. The
    token is in the fragment, which browsers do not send: it stays out of access logs."""
    base = settings.public_url.rstrip("/")
    return f"{base}/password-reset#{token}\n" if base else ""


@router.post("/password-reset", status_code=202)
async def request_reset(body: ResetRequest, request: Request, conn: Connection,
                        settings: AppSettings) -> dict[str, str]:
    """Email a password reset token to this address, if it has an account. The answer is
    the same either way."""
    await enforce(request, (RESET_BY_IP, f"ip:{client_ip(request)}"),
                  (RESET_BY_EMAIL, body.email), detail="too many reset requests; try again later")
    user = await accounts.user_by_email(conn, body.email)
    org_id = await accounts.home_org(conn, user.id) if user is not None else None
    if user is not None and org_id is not None:  # no organisation: nothing to log in to
        now = datetime.now(UTC)
        token = await issue_token(conn, user.id, "reset", RESET_LIFETIME, now)
        await account_mail.send(
            conn, org_id, user.email, "password_reset", body.language, now, email=user.email,
            token=token, minutes=int(RESET_LIFETIME.total_seconds() // 60),
            link=link(settings, token))
    return {"detail": SAME_ANSWER}


@router.post("/password-reset/confirm", status_code=204)
async def confirm_reset(body: ResetConfirm, request: Request, conn: Connection) -> None:
    """Set a new password with the token from a reset (or invitation) email. Every session
    of the account ends; log in again."""
    await reset_password(request, conn, body.token, body.password)


async def reset_password(request: Request, conn: AsyncConnection, token: str,
                         password: str) -> None:
    """Spend a reset or invitation token and set the password; a 422 problem for a token
    that is unknown, used or expired."""
    ip = client_ip(request)
    await enforce(request, (CONFIRM_BY_IP, f"ip:{ip}"))
    now = datetime.now(UTC)
    e = a.email_tokens.c
    spent = (await conn.execute(
        update(a.email_tokens)
        .where(e.token_hash == digest(token.strip()), e.used_at.is_(None),
               e.expires_at > now, e.purpose.in_(("reset", "invite")))
        .values(used_at=now).returning(e.user_id, e.purpose))).first()
    if spent is None:
        raise invalid([("token", "unknown, used or expired; ask for a new one")])
    await _set_password(conn, spent.user_id, password, now)
    await accounts.end_sessions(conn, spent.user_id)
    action = "invitation_accepted" if spent.purpose == "invite" else "password_reset"
    await audit.record(conn, action, org_id=await accounts.home_org(conn, spent.user_id),
                       user_id=spent.user_id, ip=ip)


async def _set_password(conn: AsyncConnection, user_id: int, password: str,
                        now: datetime) -> None:
    """Set the password; the token came by email, so the address is confirmed as well, and
    other tokens sent for the same purpose are spent."""
    user = await accounts.user(conn, user_id)
    u, e = a.users.c, a.email_tokens.c
    await conn.execute(update(a.users).where(u.id == user_id).values(
        password_hash=hash_password(password), failed_logins=0, locked_until=None,
        email_confirmed_at=user.email_confirmed_at or now))
    await conn.execute(update(a.email_tokens).where(
        e.user_id == user_id, e.used_at.is_(None), e.purpose.in_(("reset", "invite")))
        .values(used_at=now))
    if user.email_confirmed_at is None:
        await audit.record(conn, "email_confirmed", user_id=user_id,
                           org_id=await accounts.home_org(conn, user_id))


@router.post("/account/password", status_code=204)
async def change_password(body: PasswordChange, request: Request, caller: Caller,
                          conn: Connection) -> None:
    """Change your password (the current one is needed). Your other sessions end."""
    caller.require("viewer", write=True)
    await enforce(request, (CHANGE_BY_USER, f"user:{caller.user_id}"),
                  detail="too many attempts; try again later")
    user = await accounts.user(conn, caller.user_id)
    if not check_password(user.password_hash, body.current_password):
        raise invalid([("current_password", "wrong password")])
    await conn.execute(update(a.users).where(a.users.c.id == user.id).values(
        password_hash=hash_password(body.new_password)))
    token = presented_token(request)
    await accounts.end_sessions(conn, user.id, keep=digest(token) if token else None)
    await audit.record(conn, "password_changed", org_id=caller.org_id, user_id=user.id,
                       ip=client_ip(request))
