"""Incidents: list (newest first, filtered), read one with its story, acknowledge, comment.

Acknowledging says "someone is on it": it records who and when, and cancels the
incident's alerts still waiting in the outbox (escalations to the next people, as
PagerDuty and Better Stack do). Messages already sent stay sent, and the recovery is
still told to everyone who heard of the outage.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import paging, subaccounts
from dozor.api.deps import Caller, Connection, Id, IdFilter
from dozor.api.paging import Cursor, End, Limit, Start
from dozor.api.problems import Problem
from dozor.api.security import Principal, client_ip
from dozor.core.types import ErrorCode
from dozor.notify.router import cancel_escalations
from dozor.privacy import audit
from dozor.store import incidents as store
from dozor.store.incidents import IncidentFilter

router = APIRouter(tags=["incidents"])
COMMENTS_SHOWN = 100  # comments in an incident's own view; the comments route pages on


class NewComment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=10_000, description="plain text")

    @field_validator("body")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if any(ord(c) < 32 and c not in "\n\r\t" for c in value):  # PostgreSQL refuses NUL
            raise ValueError("must not contain control characters")
        return value.strip()


@router.get("/incidents")
async def list_incidents(caller: Caller, conn: Connection, limit: Limit = 100,
                         cursor: Cursor = None, state: Literal["open", "closed"] | None = None,
                         monitor_id: IdFilter = None, start: Start = None,
                         end: End = None) -> dict[str, Any]:
    """Incidents newest first; ``start`` and ``end`` keep those open at some moment
    between them."""
    start, end = paging.time_range(start, end)
    visible = await subaccounts.visible_monitor_ids(conn, caller)
    rows = await store.find_incidents(conn, caller.org_id,
                                      IncidentFilter(state, monitor_id, start, end, visible),
                                      paging.decode(cursor), limit + 1)
    return paging.page(rows, limit, _summary)


@router.get("/incidents/{incident_id}")
async def get_incident(incident_id: Id, caller: Caller, conn: Connection) -> dict[str, Any]:
    """An incident with the monitor's state changes during it, and its comments."""
    return await _detail(conn, await _incident(conn, caller, incident_id))


@router.post("/incidents/{incident_id}/acknowledge")
async def acknowledge(incident_id: Id, caller: Caller, conn: Connection,
                      request: Request) -> dict[str, Any]:
    """Acknowledge an open incident and cancel its alerts not sent yet. Acknowledging
    again changes nothing: the first acknowledgement stands."""
    caller.require("member", write=True)
    incident = await _incident(conn, caller, incident_id)
    if incident.closed_at is not None:
        raise Problem(409, f"incident {incident_id} is closed; there is nothing to "
                      "acknowledge")
    now = datetime.now(UTC)
    cancelled: list[int] = []
    if await store.acknowledge(conn, incident, caller.user_id, now):
        cancelled = await cancel_escalations(conn, incident_id,
                                             "acknowledged before it was sent", now)
        await audit.record(conn, "incident_acknowledged", org_id=caller.org_id,
                           user_id=caller.user_id, target=f"incident {incident_id}",
                           ip=client_ip(request), detail={"cancelled_messages": cancelled})
    view = await _detail(conn, await _incident(conn, caller, incident_id))
    return view | {"cancelled_messages": cancelled}


@router.get("/incidents/{incident_id}/comments")
async def list_comments(incident_id: Id, caller: Caller, conn: Connection,
                        limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """An incident's comments, oldest first."""
    await _incident(conn, caller, incident_id)
    rows = await store.list_comments(conn, incident_id, after=paging.decode(cursor),
                                     limit=limit + 1)
    return paging.page(rows, limit, _comment)


@router.post("/incidents/{incident_id}/comments", status_code=201)
async def add_comment(incident_id: Id, body: NewComment, caller: Caller, conn: Connection,
                      response: Response) -> dict[str, Any]:
    caller.require("member", write=True)
    incident = await _incident(conn, caller, incident_id)
    comment_id = await store.add_comment(conn, incident, caller.user_id, body.body,
                                         datetime.now(UTC))
    [row] = await store.list_comments(conn, incident_id, comment_id=comment_id)
    response.headers["Location"] = f"/api/v1/incidents/{incident_id}/comments"
    return _comment(row)


async def _incident(conn: AsyncConnection, caller: Principal, incident_id: int) -> Any:
    row = await store.get_incident(conn, caller.org_id, incident_id)
    # Another organisation's incident, or one of a monitor beyond a sub-account's tags, is
    # as absent as a missing one.
    if row is None or not caller.sees(row.monitor_tags):
        raise Problem(404, f"no incident {incident_id}")
    return row


async def _detail(conn: AsyncConnection, incident: Any) -> dict[str, Any]:
    changes = await store.state_changes(conn, incident)
    comments = await store.list_comments(conn, incident.id, limit=COMMENTS_SHOWN + 1)
    listed = paging.page(comments, COMMENTS_SHOWN, _comment)
    return _summary(incident) | {
        "state_changes": [{"at": c.at.isoformat(), "previous": c.previous,
                           "current": c.current, "flapping": c.flapping, "reason": c.reason}
                          for c in changes],
        "comments": listed["items"], "comments_next_cursor": listed["next_cursor"]}


def _summary(row: Any) -> dict[str, Any]:
    ended = row.closed_at or datetime.now(UTC)
    return {
        "id": row.id, "monitor": {"id": row.monitor_id, "name": row.monitor_name},
        "state": "open" if row.closed_at is None else "closed",
        "opened_at": row.opened_at.isoformat(),
        "closed_at": row.closed_at.isoformat() if row.closed_at else None,
        "duration_seconds": round((ended - row.opened_at).total_seconds()),
        "resolution": row.resolution, "cause": row.cause,
        "first_error": _error_name(row.first_error), "location": row.location_name,
        "acknowledgement": None if row.acknowledged_at is None else {
            "at": row.acknowledged_at.isoformat(),
            "by": _person(row.acknowledged_by, row.acknowledged_by_name)},
    }


def _comment(row: Any) -> dict[str, Any]:
    return {"id": row.id, "incident_id": row.incident_id, "body": row.body,
            "author": _person(row.user_id, row.author_name),
            "created_at": row.created_at.isoformat()}


def _person(user_id: int | None, name: str | None) -> dict[str, Any] | None:
    return None if user_id is None else {"id": user_id, "name": name}


def _error_name(code: int | None) -> str | None:
    if code is None:
        return None
    try:
        return ErrorCode(code).name.lower()
    except ValueError:  # a code a newer version wrote
        return str(code)
