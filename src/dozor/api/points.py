"""Contact points: where a contact gets alerts (email, sms, telegram, ...), how they are
confirmed, and their consent ledger.

A point starts ``unconfirmed`` and gets nothing but its confirmation until its holder
confirms: ``POST /points/{id}/verify`` sends a code (and, for email, a link) through the
notify service, exactly as ``dozor points verify`` does; ``POST /points/{id}/confirm`` takes
the code back. Nothing else confirms a point: no field of a point can be written to say
so. Its ``status`` is then ``confirmed``, ``opted_out`` (the holder said STOP; final) or
``failing`` (deliveries fail; confirming again shows it works).

An address is personal data: only members (and above) see it; viewers get ``null``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import paging, personal_reads
from dozor.api.deps import AppSettings, Caller, Connection, Id
from dozor.api.problems import Problem
from dozor.api.recipients import conflict, contact_row, merged, moment, owned, record, tagged
from dozor.api.security import Principal, client_ip
from dozor.api.versions import check_version
from dozor.notify import consent, contacts
from dozor.notify.contacts import PointSpec
from dozor.store import notify_tables as n

router = APIRouter(tags=["contact points"],
                   dependencies=[personal_reads.recorded("contact points and consents")])
Limit = Annotated[int, Query(ge=1, le=500)]


class Code(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=20, description="What the holder received")


@router.get("/contacts/{contact_id}/points")
async def list_points(contact_id: Id, caller: Caller, conn: Connection, limit: Limit = 100,
                      cursor: str | None = None) -> dict[str, Any]:
    """The contact's points, by id."""
    await contact_row(conn, caller.org_id, contact_id)
    p = n.contact_points.c
    rows = (await conn.execute(
        select(n.contact_points)
        .where(p.contact_id == contact_id, p.id > (paging.decode(cursor) or 0))
        .order_by(p.id).limit(limit + 1))).all()
    return paging.page(rows, limit, lambda row: point_view(row, caller))


@router.post("/contacts/{contact_id}/points", status_code=201)
async def create_point(contact_id: Id, body: PointSpec, caller: Caller, conn: Connection,
                       request: Request, response: Response) -> dict[str, Any]:
    """An unconfirmed point; send its confirmation with ``POST /points/{id}/verify``."""
    caller.require("member", write=True)
    await contact_row(conn, caller.org_id, contact_id)
    if body.address and await contacts.find_point(conn, caller.org_id, body.kind,
                                                  body.address) is not None:
        raise conflict("address", f"the organisation has a {body.kind} point with this address")
    point_id = await contacts.add_point(conn, caller.org_id, contact_id, body,
                                        datetime.now(UTC))
    await record(conn, request, caller, "point_added", f"point {point_id}")
    response.headers["Location"] = f"/api/v1/points/{point_id}"
    return await _respond(conn, caller, point_id, response)


@router.get("/points/{point_id}")
async def get_point(point_id: Id, caller: Caller, conn: Connection,
                    response: Response) -> dict[str, Any]:
    return await _respond(conn, caller, point_id, response)


@router.patch("/points/{point_id}")
async def patch_point(point_id: Id, caller: Caller, conn: Connection, request: Request,
                      response: Response, body: Annotated[dict[str, Any], Body()],
                      if_match: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Change how the point is used (events, active hours, escalation, priority, secret; a
    JSON merge patch). Kind and address stay: a new address is a new point, with its own
    confirmation."""
    caller.require("member", write=True)
    row = await _row(conn, caller.org_id, point_id)
    check_version("point", row.version, if_match)
    current = contacts.point_fields(row)
    spec = merged(PointSpec, current, body)
    for field in ("kind", "address"):
        if getattr(spec, field) != current[field]:
            raise Problem(422, f"{field}: cannot change; add a new point (it needs its own "
                          "confirmation) and delete this one",
                          errors=[{"field": field, "message": "cannot change"}])
    await contacts.update_point(conn, point_id, spec)
    await record(conn, request, caller, "point_changed", f"point {point_id}")
    return await _respond(conn, caller, point_id, response)


@router.delete("/points/{point_id}", status_code=204)
async def delete_point(point_id: Id, caller: Caller, conn: Connection, request: Request,
                       if_match: Annotated[str | None, Header()] = None) -> None:
    """Remove a point (the consent ledger keeps its records)."""
    caller.require("member", write=True)
    row = await _row(conn, caller.org_id, point_id)
    if if_match is not None:
        check_version("point", row.version, if_match)
    await contacts.remove_point(conn, caller.org_id, point_id)
    await record(conn, request, caller, "point_removed", f"point {point_id}")


@router.post("/points/{point_id}/verify", status_code=202)
async def verify_point(point_id: Id, caller: Caller, conn: Connection, request: Request,
                       settings: AppSettings) -> dict[str, Any]:
    """Send the point its confirmation code (email: and a link) through the notify service,
    or, for Telegram, make the deep link its holder opens. Rate-limited per point and per
    account (429 with Retry-After)."""
    caller.require("member", write=True)
    await _row(conn, caller.org_id, point_id)
    try:
        started = await consent.start_verification(conn, point_id, datetime.now(UTC),
                                                   settings.public_url)
    except consent.TooSoon as error:
        raise Problem(429, str(error), headers={
            "Retry-After": str(max(1, math.ceil(error.retry_after)))}) from None
    except consent.ConsentError as error:
        raise _consent_problem(error) from None
    link = None
    if started.deep_link_token is not None:
        link = await consent.deep_link_url(conn, started.deep_link_token)
    await record(conn, request, caller, "point_verification_sent", f"point {point_id}")
    return {"point_id": point_id, "method": started.method,
            "expires_at": moment(started.expires_at), "deep_link": link}


@router.post("/points/{point_id}/confirm", response_model=None)
async def confirm_point(point_id: Id, body: Code, caller: Caller, conn: Connection,
                        request: Request, response: Response) -> dict[str, Any] | JSONResponse:
    """Confirm the point with the code its holder received (five wrong codes spend it)."""
    caller.require("member", write=True)
    await _row(conn, caller.org_id, point_id)
    try:
        await consent.confirm_code(conn, point_id, body.code, datetime.now(UTC),
                                   source=client_ip(request),
                                   user_agent=request.headers.get("user-agent"))
    except consent.ConsentError as error:
        # Returned, not raised: the request's transaction commits, so the wrong try counts.
        return _consent_problem(error).response()
    await record(conn, request, caller, "point_confirmed", f"point {point_id}")
    return await _respond(conn, caller, point_id, response)


@router.get("/points/{point_id}/consents")
async def point_consents(point_id: Id, caller: Caller, conn: Connection, limit: Limit = 100,
                         cursor: str | None = None) -> dict[str, Any]:
    """The point's consent ledger, oldest first: each grant and withdrawal, how, when, from
    where, and the text the holder agreed to (those personal details for members only)."""
    await _row(conn, caller.org_id, point_id)
    k = n.consents.c
    rows = (await conn.execute(
        select(n.consents).where(k.point_id == point_id, k.id > (paging.decode(cursor) or 0))
        .order_by(k.id).limit(limit + 1))).all()
    return paging.page(rows, limit, lambda row: _consent(row, caller))


async def _row(conn: AsyncConnection, org_id: int, point_id: int) -> Any:
    return await owned(conn, n.contact_points, org_id, point_id, "contact point")


async def _respond(conn: AsyncConnection, caller: Principal, point_id: int,
                   response: Response) -> dict[str, Any]:
    return tagged(response, point_view(await _row(conn, caller.org_id, point_id), caller))


def point_view(row: Any, caller: Principal) -> dict[str, Any]:
    """A point as ``caller`` may see it (the dashboard shows the same view)."""
    personal = caller.can("member")
    return {
        "id": row.id, "contact_id": row.contact_id, "kind": row.kind,
        "address": contacts.shown_address(row.address) if personal else None,
        "status": contacts.point_status(row._mapping), "events": list(row.events),
        "active_hours": row.active_hours, "outside_hours": row.outside_hours,
        "escalation_minutes": row.escalation_minutes, "priority": row.priority,
        "secret_set": row.secret is not None,
        "confirmed_at": moment(row.confirmed_at), "opted_out_at": moment(row.opted_out_at),
        "failing_since": moment(row.failing_since),
        # A provider's reason often quotes the address.
        "failing_reason": row.failing_reason if personal else None,
        "version": row.version, "created_at": moment(row.created_at)}


def _consent(row: Any, caller: Principal) -> dict[str, Any]:
    personal = caller.can("member")
    return {"id": row.id, "action": row.action, "method": row.method, "at": moment(row.at),
            "kind": row.kind, "detail": row.detail,
            **{key: getattr(row, key) if personal else None
               for key in ("address", "source", "user_agent", "text_shown")}}


def _consent_problem(error: consent.ConsentError) -> Problem:
    """A ConsentError's message names its field: a bad ``code`` is 422, a point in the
    wrong state (confirmed already, opted out) is 409."""
    field, _, message = str(error).partition(": ")
    status = 422 if field == "code" else 409
    return Problem(status, str(error), errors=[{"field": field, "message": message}])
