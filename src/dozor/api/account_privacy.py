"""The account's own privacy controls: restricting processing, asking for the account's
erasure, and erasing one contact (``privacy.restriction``, ``privacy.requests``).

Restriction and the account's erasure are the owner's to decide; erasing a contact (a
person who gets alerts, perhaps without an account) is an admin's too. Each is in the
audit log; the erasure itself is recorded outside the account, which it removes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.api.deps import Caller, Connection, Id, database, principal
from dozor.api.problems import Problem, invalid
from dozor.api.security import Principal, client_ip
from dozor.privacy import audit, erasure, requests, restriction
from dozor.store import notify_tables as n
from dozor.store import privacy_tables as pv
from dozor.store import tables as t
from dozor.store.db import write_transaction

router = APIRouter(tags=["privacy"])
log = logging.getLogger(__name__)


class Restriction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    restricted: bool = Field(description="true: stop checks and messages, keep the data")


class PlanSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: Literal["free"] = Field(description="the only plan an account picks itself: other "
                                              "plans are set by the operator")


class ErasureConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: str = Field(max_length=64, description="the organisation's slug, as a "
                                                    "safeguard against a slip")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _request(row: Any) -> dict[str, Any]:
    return {"id": row.id, "contact_id": row.contact_id, "requested_at": _iso(row.requested_at),
            "due_by": _iso(row.due_by), "done_at": _iso(row.done_at),
            "status": "done" if row.done_at is not None else "pending"}


@router.get("/account/privacy")
async def privacy_state(caller: Caller, conn: Connection) -> dict[str, Any]:
    """Whether processing is restricted, and the account's erasure requests."""
    caller.require("admin")
    r = pv.erasure_requests.c
    rows = (await conn.execute(select(pv.erasure_requests).where(
        r.org_id == caller.org_id).order_by(r.id.desc()).limit(100))).all()
    return {"restricted_at": _iso(await restriction.restricted_since(conn, caller.org_id)),
            "erasure_requests": [_request(row) for row in rows]}


@router.post("/account/restriction")
async def set_restriction(body: Restriction, caller: Caller, conn: Connection,
                          request: Request) -> dict[str, Any]:
    """Restrict processing (checks and messages stop; everything stays, readable and
    exportable) or lift the restriction."""
    caller.require("owner", write=True)
    if not body.restricted and await _erasure_pending(conn, caller.org_id):
        raise Problem(409, "restricted: the account's erasure is under way")
    now = datetime.now(UTC)
    changed = await (restriction.restrict(conn, caller.org_id, now=now) if body.restricted
                     else restriction.lift(conn, caller.org_id))
    if changed:
        await audit.record(conn, "restricted" if body.restricted else "restriction_lifted",
                           org_id=caller.org_id, user_id=caller.user_id,
                           ip=client_ip(request), target=f"organisation {caller.org_id}")
    return {"restricted_at": _iso(await restriction.restricted_since(conn, caller.org_id))}


@router.post("/account/plan")
async def switch_to_free(body: PlanSwitch, caller: Caller, conn: Connection,
                         request: Request) -> dict[str, Any]:
    """Move the account to the free plan at once: a trial or paid period ends, its dates
    are forgotten, and the free plan's limits and retention (kept while used) apply."""
    caller.require("owner", write=True)
    o = t.organizations.c
    await conn.execute(update(t.organizations).where(o.id == caller.org_id).values(
        plan=body.plan, trial_ends_at=None, paid_until=None))
    await audit.record(conn, "plan_changed", org_id=caller.org_id, user_id=caller.user_id,
                       ip=client_ip(request), target=f"organisation {caller.org_id}",
                       detail={"plan": body.plan, "until": None, "by": "owner"})
    return {"plan": body.plan}


@router.post("/account/erasure", status_code=202)
async def request_erasure(body: ErasureConfirmation, request: Request,
                          background: BackgroundTasks) -> dict[str, Any]:
    """Erase the whole account: every monitor, result, incident, contact, message and
    member who belongs to no other account. Processing stops at once; the erasure runs
    straight after this answer (the deadline is five business days). Cannot be undone."""
    # Not the request's transaction (``deps.Connection``): the request must have committed
    # before the erasure, which runs after the answer, looks for it.
    engine = database(request)
    async with write_transaction(engine) as conn:
        caller = await principal(request, conn)
        row = await start_account_erasure(conn, request, caller, body.confirm)
    background.add_task(carry_out, engine)
    return _request(row)


async def start_account_erasure(conn: AsyncConnection, request: Request, caller: Principal,
                                confirm: str) -> Any:
    """Record the owner's request (restricting the account at once), in the caller's
    transaction; ``carry_out`` does the erasure once it has committed."""
    caller.require("owner", write=True)
    slug = await conn.scalar(select(t.organizations.c.slug)
                             .where(t.organizations.c.id == caller.org_id))
    if confirm != slug:
        raise invalid([("confirm", f"type the account's slug ({slug}) to confirm")])
    row = await requests.request_erasure(conn, caller.org_id, source="request",
                                         requested_by=caller.user_id, now=datetime.now(UTC))
    await audit.record(conn, "erasure_requested", org_id=caller.org_id,
                       user_id=caller.user_id, ip=client_ip(request),
                       target=f"organisation {caller.org_id}", detail={"request": row.id})
    return row


@router.post("/contacts/{contact_id}/erasure")
async def erase_contact(contact_id: Id, caller: Caller, conn: Connection,
                        request: Request) -> dict[str, Any]:
    """Erase a contact and everything held about them: points, the consent ledger about
    them, codes sent, messages and attempts; they leave every alert policy."""
    caller.require("admin", write=True)
    found = await conn.scalar(select(n.contacts.c.id).where(
        n.contacts.c.id == contact_id, n.contacts.c.org_id == caller.org_id))
    if found is None:
        raise Problem(404, "contact not found")
    now = datetime.now(UTC)
    row = await requests.request_erasure(conn, caller.org_id, contact_id, source="request",
                                         requested_by=caller.user_id, now=now)
    await audit.record(conn, "erasure_requested", org_id=caller.org_id,
                       user_id=caller.user_id, ip=client_ip(request),
                       target=f"contact {contact_id}", detail={"request": row.id})
    report = await erasure.erase_contact(conn, caller.org_id, contact_id, now=now,
                                         reason="request", request_id=row.id)
    return {"request": row.id, "done_at": now.isoformat(), **report.as_detail()}


async def organisation_of(conn: AsyncConnection, org_id: int) -> Any:
    """The organisation's name and slug (the slug confirms an erasure)."""
    o = t.organizations.c
    return (await conn.execute(select(o.name, o.slug).where(o.id == org_id))).one()


async def _erasure_pending(conn: AsyncConnection, org_id: int) -> bool:
    r = pv.erasure_requests.c
    return await conn.scalar(select(r.id).where(
        r.org_id == org_id, r.contact_id.is_(None), r.done_at.is_(None))) is not None


async def carry_out(engine: AsyncEngine) -> None:
    try:
        await erasure.run_open(engine, datetime.now(UTC))
    except Exception:  # the periodic run (privacy.service) tries again
        log.exception("erasure failed; it will be tried again")
