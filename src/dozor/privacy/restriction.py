"""Restriction of processing: an account may freeze what Dozor does with its data.

While ``organizations.restricted_at`` is set, its monitors are not checked (the engine
holds them as paused; their own paused flags are untouched, so lifting the restriction
brings back exactly what ran before), heartbeat pings are not stored, and no message goes
out for it except mail the account's own people asked for (password resets,
invitations). Nothing is deleted: the data stays, readable and exportable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.store import tables as t
from dozor.store.monitors import next_revision


async def restrict(conn: AsyncConnection, org_id: int, *, now: datetime) -> bool:
    """Freeze the organisation's processing; False if it already was."""
    return await _set(conn, org_id, now)


async def lift(conn: AsyncConnection, org_id: int) -> bool:
    """Let processing resume; False if it was not restricted."""
    return await _set(conn, org_id, None)


async def restricted_since(conn: AsyncConnection, org_id: int) -> datetime | None:
    value: datetime | None = await conn.scalar(
        select(t.organizations.c.restricted_at).where(t.organizations.c.id == org_id))
    return value


async def _set(conn: AsyncConnection, org_id: int, value: datetime | None) -> bool:
    o = t.organizations.c
    unchanged = o.restricted_at.is_(None) if value is None else o.restricted_at.is_not(None)
    changed = await conn.execute(update(t.organizations).where(
        o.id == org_id, ~unchanged).values(restricted_at=value))
    if not changed.rowcount:
        return False
    # Stamping its monitors with a new revision makes running engines reload them.
    await conn.execute(update(t.monitors).where(t.monitors.c.org_id == org_id)
                       .values(revision=await next_revision(conn)))
    return True
