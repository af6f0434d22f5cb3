"""The delivery log: every message Dozor sent or meant to send for the organisation, and
every attempt, retry and receipt of one.

Members of the organisation may read what was sent. Two things are never shown: channel
settings (provider credentials live there; a channel appears by name and kind only), and
the text of confirmation messages, whose code or link is for the recipient alone (anyone
reading it could confirm an address without its holder's consent).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import paging, personal_reads
from dozor.api.deps import Caller, Connection, Id, IdFilter
from dozor.api.paging import Cursor, End, Limit, Start
from dozor.api.problems import Problem
from dozor.notify.outbox import SECRET_EVENTS
from dozor.store import notify_tables as n

router = APIRouter(tags=["messages"], dependencies=[personal_reads.recorded("delivery log")])
Status = Literal["queued", "sending", "accepted", "delivered", "failed", "refused",
                 "cancelled"]  # notify.outbox: UNFINISHED and FINISHED
PRIVATE_TEXT = frozenset(SECRET_EVENTS)  # never shown, also while still queued


@router.get("/messages")
async def list_messages(caller: Caller, conn: Connection, limit: Limit = 100,
                        cursor: Cursor = None, state: Status | None = None,
                        contact_id: IdFilter = None, point_id: IdFilter = None,
                        incident_id: IdFilter = None, monitor_id: IdFilter = None,
                        start: Start = None, end: End = None) -> dict[str, Any]:
    """Messages newest first, created within [start, end)."""
    start, end = paging.time_range(start, end)
    m = n.messages.c
    query = _messages().where(m.org_id == caller.org_id).order_by(m.id.desc())
    before = paging.decode(cursor)
    equal = ((m.status, state), (m.contact_id, contact_id), (m.point_id, point_id),
             (m.incident_id, incident_id), (m.monitor_id, monitor_id))
    query = query.where(*(column == value for column, value in equal if value is not None))
    if before is not None:
        query = query.where(m.id < before)
    if start is not None:
        query = query.where(m.created_at >= start)
    if end is not None:
        query = query.where(m.created_at < end)
    rows = (await conn.execute(query.limit(limit + 1))).all()
    return paging.page(rows, limit, _view)


@router.get("/messages/{message_id}")
async def get_message(message_id: Id, caller: Caller, conn: Connection) -> dict[str, Any]:
    """One message with every event of its delivery, oldest first."""
    m = n.messages.c
    row = (await conn.execute(_messages().where(m.id == message_id,
                                                m.org_id == caller.org_id))).first()
    if row is None:  # another organisation's message is as absent as a missing one
        raise Problem(404, f"no message {message_id}")
    return _view(row) | {"events": await _events(conn, message_id)}


def _messages() -> Select[Any]:
    m, c, p, ch = n.messages.c, n.contacts.c, n.contact_points.c, n.notify_channels.c
    return (select(n.messages, c.name.label("contact_name"), p.kind.label("point_kind"),
                   ch.name.label("channel_name"), ch.kind.label("channel_kind"))
            .outerjoin(n.contacts, c.id == m.contact_id)
            .outerjoin(n.contact_points, p.id == m.point_id)
            .outerjoin(n.notify_channels, ch.id == m.channel_id))


async def _events(conn: AsyncConnection, message_id: int) -> list[dict[str, Any]]:
    e, ch = n.message_events.c, n.notify_channels.c
    rows = (await conn.execute(
        select(n.message_events, ch.name.label("channel_name"), ch.kind.label("channel_kind"))
        .outerjoin(n.notify_channels, ch.id == e.channel_id)
        .where(e.message_id == message_id).order_by(e.id))).all()
    return [{"at": r.at.isoformat(), "kind": r.kind,
             "channel": _channel(r.channel_id, r.channel_name, r.channel_kind),
             "detail": r.detail, "provider_code": r.provider_code,
             "duration_ms": r.duration_ms} for r in rows]


def _view(row: Any) -> dict[str, Any]:
    private = row.event in PRIVATE_TEXT
    return {
        "id": row.id, "event": row.event, "status": row.status, "tracked": row.tracked,
        "created_at": row.created_at.isoformat(), "due_at": row.due_at.isoformat(),
        "accepted_at": _time(row.accepted_at), "finished_at": _time(row.finished_at),
        "attempts": row.attempts, "last_error": row.last_error,
        "contact": None if row.contact_id is None else {"id": row.contact_id,
                                                        "name": row.contact_name},
        "point": None if row.point_id is None else {"id": row.point_id,
                                                    "kind": row.point_kind},
        "monitor_id": row.monitor_id, "incident_id": row.incident_id,
        "failover_from": row.failover_from,
        "channel": _channel(row.channel_id, row.channel_name, row.channel_kind),
        "provider_id": row.provider_id, "parts": row.parts,
        "cost": str(row.cost) if row.cost is not None else None,
        "language": row.language, "text_withheld": private,
        "subject": None if private else row.subject, "body": None if private else row.body,
    }


def _channel(channel_id: int | None, name: str | None, kind: str | None
             ) -> dict[str, Any] | None:
    return None if channel_id is None else {"id": channel_id, "name": name, "kind": kind}


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
