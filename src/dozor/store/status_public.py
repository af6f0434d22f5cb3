"""What a visitor of a published status page is shown, read in a fixed number of
statements however many monitors the page has.

Only columns meant for visitors are selected: a monitor's public name (or its name) and
its state, never its configuration, target or messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.store import tables as t
from dozor.store.status_tables import (
    status_notes,
    status_page_groups,
    status_page_monitors,
    status_pages,
)


async def published_page(conn: AsyncConnection, *, slug: str | None = None,
                         domain: str | None = None) -> Any:
    """The published page at ``slug`` or ``domain``; None for any other."""
    p = status_pages.c
    query = select(p.id, p.slug, p.title, p.description, p.custom_domain).where(p.published)
    query = query.where(p.slug == slug) if slug is not None else query.where(
        p.custom_domain == domain)
    return (await conn.execute(query)).first()


async def shown_monitors(conn: AsyncConnection, page_id: int) -> Sequence[Any]:
    """The page's groups in order, each row one monitor (or none, for an empty group):
    group id and name, monitor id, public name and state."""
    g, i, m, s = (status_page_groups.c, status_page_monitors.c, t.monitors.c,
                  t.monitor_state.c)
    return (await conn.execute(
        select(g.id.label("group_id"), g.name.label("group_name"), i.monitor_id,
               func.coalesce(i.display_name, m.name).label("name"), s.state)
        .select_from(status_page_groups)
        .outerjoin(status_page_monitors, i.group_id == g.id)
        .outerjoin(t.monitors, m.id == i.monitor_id)
        .outerjoin(t.monitor_state, s.monitor_id == i.monitor_id)
        .where(g.page_id == page_id).order_by(g.position, i.position))).all()


async def recent_notes(conn: AsyncConnection, page_id: int, since: datetime,
                       limit: int) -> Sequence[Any]:
    """The page's notes written since ``since``, newest first, at most ``limit``."""
    n = status_notes.c
    return (await conn.execute(
        select(n.status, n.body, n.incident_id, n.created_at, n.updated_at)
        .where(n.page_id == page_id, n.created_at >= since)
        .order_by(n.created_at.desc(), n.id.desc()).limit(limit))).all()
