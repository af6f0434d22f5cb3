"""Sign-up, log-in and log-out, the account, and API tokens.

The first person to sign up on a fresh installation owns its organisation (and the
monitors already there). Later sign-ups get an organisation of their own on the trial
plan when ``DOZOR_SIGNUP`` is on; otherwise an owner adds them (``members``).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import account_email, plans, two_factor
from dozor.api.deps import MAX_ID, AppSettings, Caller, Connection, Id
from dozor.api.fields import Email, Password
from dozor.api.problems import Problem
from dozor.api.ratelimit import RateLimit, enforce
from dozor.api.security import (
    SESSION_COOKIE,
    SESSION_LIFETIME,
    check_password,
    client_ip,
    digest,
    hash_password,
    new_token,
    presented_token,
    public_user,
)
from dozor.core.durations import format_duration
from dozor.privacy import audit, keys
from dozor.store import account_tables as a
from dozor.store import accounts
from dozor.store import tables as t

router = APIRouter(tags=["account"])
LOGIN_BY_IP = RateLimit("login_by_ip", 30, 300.0)
LOGIN_BY_EMAIL = RateLimit("login_by_email", 10, 900.0)
# Each sign-up sends a message to the address given.
SIGNUP_BY_IP = RateLimit("signup_by_ip", 10, 3600.0)
TOKENS_BY_USER = RateLimit("tokens_by_user", 20, 3600.0)
LOCK_AFTER, LOCK_FOR = 10, timedelta(minutes=15)
TRIAL = timedelta(days=14)
DEFAULT_ORG = 1


class SignUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    password: Password
    name: str = Field(min_length=1, max_length=200)
    organisation: str | None = Field(None, min_length=1, max_length=200)


class LogIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    password: str = Field(max_length=200)
    code: str | None = Field(None, max_length=10, description="TOTP code, when enabled")
    recovery_code: str | None = Field(None, max_length=40,
                                      description="instead of a code: a recovery code")
    organisation_id: int | None = Field(
        None, ge=1, le=MAX_ID,
        description="which of your organisations (default: the one you joined first)")


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    scope: Literal["read", "write"] = "write"
    expires_in_days: int | None = Field(None, ge=1, le=3650)


@router.post("/signup", status_code=201)
async def sign_up(body: SignUp, request: Request, conn: Connection,
                  settings: AppSettings) -> dict[str, Any]:
    """Create a user (and, when sign-up is open, an organisation), and send the message
    that confirms the address. Then log in."""
    await enforce(request, (SIGNUP_BY_IP, f"ip:{client_ip(request)}"))
    if await accounts.user_by_email(conn, body.email) is not None:
        raise Problem(409, "email: an account with this address exists",
                      errors=[{"field": "email", "message": "already registered"}])
    first = not (await conn.execute(select(func.count()).select_from(a.users))).scalar()
    if not first and not settings.signup:
        raise Problem(403, "sign-up is closed here; ask an owner to add you")
    now = datetime.now(UTC)
    org_id = DEFAULT_ORG if first else await _new_org(conn, body, now)
    user_id = (await conn.execute(insert(a.users).values(
        **await accounts.email_fields(conn, body.email), name=body.name,
        password_hash=hash_password(body.password), failed_logins=0, created_at=now,
    ).returning(a.users.c.id))).scalar_one()
    await conn.execute(insert(a.memberships).values(user_id=user_id, org_id=org_id,
                                                    role="owner", created_at=now))
    await account_email.add_own_point(conn, org_id, body.name, body.email, now,
                                      settings.public_url)
    await audit.record(conn, "signup", org_id=org_id, user_id=user_id, ip=client_ip(request))
    return {"user": public_user(await accounts.user(conn, user_id)), "organisation_id": org_id}


async def _new_org(conn: AsyncConnection, body: SignUp, now: datetime) -> int:
    name = body.organisation or f"{body.name}'s organisation"
    result = await conn.execute(insert(t.organizations).values(
        slug=f"org-{secrets.token_hex(6)}", name=name, plan="trial", created_at=now,
        sms_credits=50, trial_ends_at=now + TRIAL).returning(t.organizations.c.id))
    org_id = int(result.scalar_one())
    await keys.ensure(conn, org_id)  # its data key, made with it
    return org_id


@router.post("/sessions", status_code=201)
async def log_in(body: LogIn, request: Request, response: Response,
                 conn: Connection) -> dict[str, Any]:
    """Exchange email, password (and TOTP code or recovery code) for a session token (also
    set as a cookie)."""
    ip = client_ip(request) or "-"
    await enforce(request, (LOGIN_BY_IP, f"ip:{ip}"),
                  (LOGIN_BY_EMAIL, body.email.strip().lower()),
                  detail="too many log-in attempts; try again later")
    user = await accounts.user_by_email(conn, body.email.strip().lower())
    now = datetime.now(UTC)
    if user is None or (user.locked_until is not None and user.locked_until > now) \
            or not check_password(user.password_hash, body.password) \
            or not await two_factor.second_factor_ok(conn, user, body.code,
                                                     body.recovery_code, now):
        await _failed_login(conn, user, ip, now)
        # Committed all the same: the failure counts towards the lock-out.
        raise Problem(401, "wrong email, password or code", commit=True)
    membership = await accounts.membership(conn, user.id, body.organisation_id)
    if membership is None:
        raise Problem(403, "you are not a member of that organisation"
                      if body.organisation_id else "this user belongs to no organisation")
    token = new_token("dzs_")
    await conn.execute(update(a.users).where(a.users.c.id == user.id)
                       .values(failed_logins=0, locked_until=None))
    org = membership.org_id
    await keys.ensure(conn, org)
    await conn.execute(insert(a.sessions).values(
        token_hash=digest(token), user_id=user.id, org_id=org, created_at=now,
        expires_at=now + SESSION_LIFETIME, ip=keys.Personal(org, ip),
        user_agent=keys.Personal(org, (request.headers.get("user-agent") or "")[:300])))
    answer = await _logged_in(conn, user, body, membership.org_id, ip)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(SESSION_LIFETIME.total_seconds()),
                        httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")
    return {"token": token, "expires_at": (now + SESSION_LIFETIME).isoformat(), **answer}


async def _logged_in(conn: AsyncConnection, user: Any, body: LogIn, org_id: int,
                     ip: str) -> dict[str, Any]:
    """Audit a log-in; what the answer says besides the token."""
    answer: dict[str, Any] = {"user": public_user(user), "organisation_id": org_id}
    if user.totp_enabled_at is not None and body.recovery_code is not None:
        left = await two_factor.recovery_codes_left(conn, user.id)
        await audit.record(conn, "recovery_code_used", org_id=org_id, user_id=user.id, ip=ip,
                           detail={"left": left})
        answer["recovery_codes_left"] = left
    await audit.record(conn, "login", org_id=org_id, user_id=user.id, ip=ip)
    return answer


async def _failed_login(conn: AsyncConnection, user: Any, ip: str, now: datetime) -> None:
    if user is None:
        return
    failures = user.failed_logins + 1
    values: dict[str, Any] = {"failed_logins": failures}
    if failures >= LOCK_AFTER:
        values |= {"locked_until": now + LOCK_FOR, "failed_logins": 0}
    await conn.execute(update(a.users).where(a.users.c.id == user.id).values(**values))
    await audit.record(conn, "login_failed", org_id=None, user_id=user.id, ip=ip)


@router.delete("/sessions/current", status_code=204)
async def log_out(request: Request, response: Response, caller: Caller,
                  conn: Connection) -> None:
    token = presented_token(request) or ""
    await conn.execute(a.sessions.delete().where(a.sessions.c.token_hash == digest(token)))
    await audit.record(conn, "logout", org_id=caller.org_id, user_id=caller.user_id)
    response.delete_cookie(SESSION_COOKIE)


@router.get("/account")
async def account(caller: Caller, conn: Connection) -> dict[str, Any]:
    """Who you are, in which organisation, with which role and plan."""
    user = await accounts.user(conn, caller.user_id)
    org = (await conn.execute(select(t.organizations)
                              .where(t.organizations.c.id == caller.org_id))).one()
    plan = await plans.plan_of(conn, caller.org_id)
    return {"user": public_user(user), "role": caller.role, "via": caller.via,
            "organisation": {"id": org.id, "name": org.name, "plan": org.plan,
                             "sms_credits": org.sms_credits,
                             "trial_ends_at": _iso(org.trial_ends_at),
                             "paid_until": _iso(org.paid_until),
                             "limits": {"plan": plan.name, "monitors": plan.limits.monitors,
                                        "min_interval": format_duration(
                                            plan.limits.min_interval)},
                             "messaging_suspended": org.messaging_suspended_reason}}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@router.post("/tokens", status_code=201)
async def create_token(body: NewToken, request: Request, caller: Caller,
                       conn: Connection) -> dict[str, Any]:
    """A new API token, shown once. Read tokens for viewers; write tokens need member."""
    caller.require("member" if body.scope == "write" else "viewer", write=True)
    await enforce(request, (TOKENS_BY_USER, f"user:{caller.user_id}"),
                  detail="too many tokens created lately; try again later")
    now = datetime.now(UTC)
    token = new_token()
    expires = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    token_id = (await conn.execute(insert(a.api_tokens).values(
        org_id=caller.org_id, user_id=caller.user_id, name=body.name, prefix=token[:12],
        token_hash=digest(token), scope=body.scope, created_at=now, expires_at=expires,
    ).returning(a.api_tokens.c.id))).scalar_one()
    await audit.record(conn, "token_created", org_id=caller.org_id, user_id=caller.user_id,
                       target=f"token {token_id}", ip=client_ip(request))
    return {"id": token_id, "name": body.name, "scope": body.scope, "token": token,
            "expires_at": expires.isoformat() if expires else None}


@router.get("/tokens")
async def list_tokens(caller: Caller, conn: Connection) -> dict[str, Any]:
    """Your tokens (every token of the organisation for admins); never the secrets."""
    k = a.api_tokens.c
    query = select(k.id, k.name, k.prefix, k.scope, k.user_id, k.created_at, k.last_used_at,
                   k.expires_at, k.revoked_at).where(k.org_id == caller.org_id)
    if not caller.can("admin"):
        query = query.where(k.user_id == caller.user_id)
    rows = (await conn.execute(query.order_by(k.id))).mappings().all()
    return {"items": [{key: (v.isoformat() if isinstance(v, datetime) else v)
                       for key, v in row.items()} for row in rows]}


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: Id, request: Request, caller: Caller,
                       conn: Connection) -> None:
    caller.require("viewer", write=True)
    k = a.api_tokens.c
    query = update(a.api_tokens).where(k.id == token_id, k.org_id == caller.org_id,
                                       k.revoked_at.is_(None))
    if not caller.can("admin"):
        query = query.where(k.user_id == caller.user_id)
    if not (await conn.execute(query.values(revoked_at=datetime.now(UTC)))).rowcount:
        raise Problem(404, f"no token {token_id} of yours to revoke")
    await audit.record(conn, "token_revoked", org_id=caller.org_id, user_id=caller.user_id,
                       target=f"token {token_id}", ip=client_ip(request))
