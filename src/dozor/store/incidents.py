"""Reading incidents, and what people add to them: acknowledgements and comments.

Incidents themselves are opened and closed by the result writer only
(``engine.transitions``); here they are read, and annotated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.store import account_tables as a
from dozor.store import tables as t
from dozor.store.incident_tables import incident_acknowledgements as acks
from dozor.store.incident_tables import incident_comments as comments
from dozor.store.upsert import insert_missing


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    """Which incidents: ``state`` "open" or "closed"; those of one monitor; those that
    were open at some moment in [start, end)."""

    state: str | None = None
    monitor_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    monitor_ids: frozenset[int] | None = None  # only these monitors' (a sub-account's)


def _incidents() -> Select[Any]:
    i, m, k = t.incidents.c, t.monitors.c, acks.c
    acknowledger = a.users.alias("acknowledger")
    return (select(t.incidents, m.name.label("monitor_name"), m.tags.label("monitor_tags"),
                   t.locations.c.name.label("location_name"),
                   k.user_id.label("acknowledged_by"), k.at.label("acknowledged_at"),
                   acknowledger.c.name.label("acknowledged_by_name"))
            .join(t.monitors, m.id == i.monitor_id)
            .outerjoin(t.locations, t.locations.c.id == i.location_id)
            .outerjoin(acks, k.incident_id == i.id)
            .outerjoin(acknowledger, acknowledger.c.id == k.user_id))


async def find_incidents(connection: AsyncConnection, org_id: int | None,
                         where: IncidentFilter, before: int | None = None,
                         limit: int = 100) -> Sequence[Any]:
    """Incidents newest first (by id, which follows the order they opened in), those with
    an id below ``before`` when paging; every organisation's when ``org_id`` is None."""
    i = t.incidents.c
    query = _incidents().order_by(i.id.desc()).limit(limit)
    if org_id is not None:
        query = query.where(i.org_id == org_id)
    if before is not None:
        query = query.where(i.id < before)
    if where.state is not None:
        query = query.where(i.closed_at.is_(None) if where.state == "open"
                            else i.closed_at.is_not(None))
    if where.monitor_id is not None:
        query = query.where(i.monitor_id == where.monitor_id)
    if where.monitor_ids is not None:
        query = query.where(i.monitor_id.in_(where.monitor_ids))
    if where.end is not None:
        query = query.where(i.opened_at < where.end)
    if where.start is not None:
        query = query.where(or_(i.closed_at.is_(None), i.closed_at >= where.start))
    rows: Sequence[Any] = (await connection.execute(query)).all()
    return rows


async def get_incident(connection: AsyncConnection, org_id: int, incident_id: int
                       ) -> Any | None:
    i = t.incidents.c
    query = _incidents().where(i.id == incident_id, i.org_id == org_id)
    return (await connection.execute(query)).first()


async def state_changes(connection: AsyncConnection, incident: Any) -> Sequence[Any]:
    """The monitor's state changes during an incident, oldest first (the one that opened
    it, and the one that closed it)."""
    s = t.state_changes.c
    return (await connection.execute(
        select(t.state_changes)
        .where(s.monitor_id == incident.monitor_id, s.at >= incident.opened_at,
               s.incident_id == incident.id)
        .order_by(s.at, s.id))).all()


async def acknowledge(connection: AsyncConnection, incident: Any, user_id: int,
                      at: datetime) -> bool:
    """Record who acknowledged an incident; False when someone did before (theirs stands)."""
    return await insert_missing(connection, acks, {
        "incident_id": incident.id, "org_id": incident.org_id, "user_id": user_id, "at": at})


async def add_comment(connection: AsyncConnection, incident: Any, user_id: int, body: str,
                      at: datetime) -> int:
    result = await connection.execute(insert(comments).values(
        org_id=incident.org_id, incident_id=incident.id, user_id=user_id, body=body,
        created_at=at).returning(comments.c.id))
    return int(result.scalar_one())


async def list_comments(connection: AsyncConnection, incident_id: int,
                        after: int | None = None, limit: int | None = None,
                        comment_id: int | None = None) -> Sequence[Any]:
    """An incident's comments, oldest first, with their authors' names."""
    c = comments.c
    query = (select(comments, a.users.c.name.label("author_name"))
             .outerjoin(a.users, a.users.c.id == c.user_id)
             .where(c.incident_id == incident_id).order_by(c.id))
    if after is not None:
        query = query.where(c.id > after)
    if comment_id is not None:
        query = query.where(c.id == comment_id)
    if limit is not None:
        query = query.limit(limit)
    return (await connection.execute(query)).all()
