"""Confirming a user's email address.

Sign-up makes the new user a contact of their organisation with their address as an email
point, and starts that point's confirmation: one message with a code and a link. Confirming
the point (the link, or the code sent here) confirms the account's address too, since
``notify.consent`` marks the user with that address confirmed. So there is one mechanism
for both, and one message. A user can ask for the message again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api.deps import AppSettings, Caller, Connection
from dozor.api.problems import Problem
from dozor.api.ratelimit import RateLimit, enforce
from dozor.notify import consent, contacts
from dozor.privacy import keys
from dozor.store import accounts
from dozor.store import notify_tables as n

router = APIRouter(tags=["account"])
RESEND_BY_USER = RateLimit("confirmation_resends_by_user", 5, 3600.0)


class EmailCode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=4, max_length=10, description="the code in the message")


async def add_own_point(conn: AsyncConnection, org_id: int, name: str, email: str,
                        now: datetime, public_url: str) -> int:
    """Make the user a contact of the organisation (an owner contact, told about failing
    points) with their address as an email point, and send its confirmation."""
    if await contacts.find_contact(conn, org_id, name) is not None:
        name = f"{name} <{email}>"
    contact_id = await contacts.add_contact(
        conn, org_id, contacts.ContactSpec(name=name, is_owner=True), now)
    point_id = await contacts.add_point(conn, org_id, contact_id,
                                        contacts.PointSpec(kind="email", address=email), now)
    await consent.start_verification(conn, point_id, now, public_url)
    return point_id


@router.post("/account/email/confirmation", status_code=202)
async def send_confirmation(request: Request, caller: Caller, conn: Connection,
                            settings: AppSettings) -> dict[str, Any]:
    """Send the confirmation of your address again (a code and a link)."""
    caller.require("viewer", write=True)
    await enforce(request, (RESEND_BY_USER, f"user:{caller.user_id}"),
                  detail="too many confirmation requests; try again later")
    user = await _unconfirmed(conn, caller.user_id)
    now = datetime.now(UTC)
    point = await _own_point(conn, caller.org_id, user.email)
    if point is None:  # removed since sign-up (or never made: an invited user)
        await add_own_point(conn, caller.org_id, user.name, user.email, now,
                            settings.public_url)
        return {"detail": f"a confirmation message is on its way to {user.email}"}
    try:
        started = await consent.start_verification(conn, point.id, now, settings.public_url)
    except consent.TooSoon as error:
        raise Problem(429, str(error).removeprefix("point: "),
                      headers={"Retry-After": str(int(error.retry_after) + 1)}) from None
    except consent.ConsentError as error:  # the address opted out of Dozor's messages
        raise Problem(409, str(error).removeprefix("point: ")) from None
    return {"detail": f"a confirmation message is on its way to {user.email}",
            "expires_at": started.expires_at.isoformat()}


@router.post("/account/email/confirm", status_code=204)
async def confirm_email(body: EmailCode, caller: Caller, conn: Connection) -> None:
    """Confirm your address with the code from the confirmation message (the link in it
    does the same)."""
    caller.require("viewer", write=True)
    user = await _unconfirmed(conn, caller.user_id)
    point = await _own_point(conn, caller.org_id, user.email)
    if point is None:
        raise Problem(409, "no confirmation is waiting: ask for one first")
    try:
        await consent.confirm_code(conn, point.id, body.code, datetime.now(UTC))
    except consent.ConsentError as error:
        message = str(error).removeprefix("code: ")
        raise Problem(422, f"code: {message}", errors=[{"field": "code", "message": message}],
                      commit=True) from None  # the wrong try counts


async def _unconfirmed(conn: AsyncConnection, user_id: int) -> Any:
    user = await accounts.user(conn, user_id)
    if user.email_confirmed_at is not None:
        raise Problem(409, "your address is confirmed already")
    return user


async def _own_point(conn: AsyncConnection, org_id: int, email: str) -> Any:
    p = n.contact_points.c
    found = await keys.digest_of(conn, "email", email)
    return (await conn.execute(select(n.contact_points).where(
        p.org_id == org_id, p.kind == "email", p.address_digest == found))).first()
