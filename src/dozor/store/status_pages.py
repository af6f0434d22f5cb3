"""Reading and changing status pages and their notes (the editors' side; what visitors
read is in ``status_public``).

A page's groups and monitors are written whole: a change replaces them, so their order
is the order given. Every change of a page or a note bumps its ``version``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.config.status_pages import NoteSpec, PageSpec
from dozor.store import tables as t
from dozor.store.status_tables import (
    status_notes,
    status_page_groups,
    status_page_monitors,
    status_pages,
)

p, n = status_pages.c, status_notes.c


async def create_page(conn: AsyncConnection, org_id: int, spec: PageSpec,
                      now: datetime) -> int:
    page_id = int((await conn.execute(insert(status_pages).values(
        org_id=org_id, **_fields(spec), version=1, created_at=now, updated_at=now,
    ).returning(p.id))).scalar_one())
    await _write_groups(conn, page_id, spec)
    return page_id


async def update_page(conn: AsyncConnection, page_id: int, spec: PageSpec,
                      now: datetime) -> None:
    await conn.execute(update(status_pages).where(p.id == page_id).values(
        **_fields(spec), version=p.version + 1, updated_at=now))
    await conn.execute(delete(status_page_monitors)
                       .where(status_page_monitors.c.page_id == page_id))
    await conn.execute(delete(status_page_groups)
                       .where(status_page_groups.c.page_id == page_id))
    await _write_groups(conn, page_id, spec)


async def delete_page(conn: AsyncConnection, page_id: int) -> None:
    await conn.execute(delete(status_pages).where(p.id == page_id))


def _fields(spec: PageSpec) -> dict[str, Any]:
    return {"slug": spec.slug, "title": spec.title, "description": spec.description,
            "custom_domain": spec.custom_domain, "published": spec.published}


async def _write_groups(conn: AsyncConnection, page_id: int, spec: PageSpec) -> None:
    if not spec.groups:
        return
    g = status_page_groups.c
    group_ids = (await conn.execute(
        insert(status_page_groups).returning(g.id, sort_by_parameter_order=True),
        [{"page_id": page_id, "position": position, "name": group.name}
         for position, group in enumerate(spec.groups)])).scalars().all()
    items = [{"group_id": group_id, "position": position, "page_id": page_id,
              "monitor_id": item.monitor_id, "display_name": item.display_name}
             for group_id, group in zip(group_ids, spec.groups, strict=True)
             for position, item in enumerate(group.monitors)]
    if items:
        await conn.execute(insert(status_page_monitors), items)


async def page_rows(conn: AsyncConnection, org_id: int, *, page_id: int | None = None,
                    after: int = 0, limit: int | None = None) -> Sequence[Any]:
    """An organisation's pages by id (one, or a page of the list after ``after``)."""
    query = select(status_pages).where(p.org_id == org_id, p.id > after).order_by(p.id)
    if page_id is not None:
        query = query.where(p.id == page_id)
    if limit is not None:
        query = query.limit(limit)
    return (await conn.execute(query)).all()


async def groups_of(conn: AsyncConnection, page_ids: Iterable[int]
                    ) -> dict[int, list[dict[str, Any]]]:
    """Each page's groups in order, each with its monitors in order (ids and names)."""
    g, m = status_page_groups.c, status_page_monitors.c
    rows = (await conn.execute(
        select(g.page_id, g.id, g.name, m.monitor_id, m.display_name)
        .outerjoin(status_page_monitors, m.group_id == g.id)
        .where(g.page_id.in_(list(page_ids))).order_by(g.page_id, g.position, m.position)
    )).all()
    pages: dict[int, list[dict[str, Any]]] = defaultdict(list)
    last_group = None
    for row in rows:
        if row.id != last_group:
            pages[row.page_id].append({"name": row.name, "monitors": []})
            last_group = row.id
        if row.monitor_id is not None:
            pages[row.page_id][-1]["monitors"].append(
                {"monitor_id": row.monitor_id, "display_name": row.display_name})
    return pages


async def addresses_taken(conn: AsyncConnection, spec: PageSpec,
                          page_id: int | None = None) -> list[str]:
    """Which of the page's slug and custom domain another page already has."""
    query = select(p.slug, p.custom_domain).where(
        or_(p.slug == spec.slug, p.custom_domain == spec.custom_domain)
        if spec.custom_domain else p.slug == spec.slug)
    if page_id is not None:
        query = query.where(p.id != page_id)
    taken = set()
    for slug, domain in await conn.execute(query):
        taken |= {"slug"} if slug == spec.slug else set()
        taken |= {"custom_domain"} if domain and domain == spec.custom_domain else set()
    return sorted(taken)


async def own_monitors(conn: AsyncConnection, org_id: int, ids: Iterable[int]) -> set[int]:
    """Those of ``ids`` that are monitors of the organisation."""
    m = t.monitors.c
    found = await conn.execute(select(m.id).where(m.org_id == org_id, m.id.in_(set(ids))))
    return set(found.scalars())


async def own_incident(conn: AsyncConnection, org_id: int, incident_id: int) -> bool:
    i = t.incidents.c
    found = await conn.execute(select(i.id).where(i.id == incident_id, i.org_id == org_id))
    return found.first() is not None


async def add_note(conn: AsyncConnection, page_id: int, spec: NoteSpec, author_id: int,
                   now: datetime) -> int:
    return int((await conn.execute(insert(status_notes).values(
        page_id=page_id, status=spec.status, body=spec.text, incident_id=spec.incident_id,
        author_id=author_id, version=1, created_at=now).returning(n.id))).scalar_one())


async def change_note(conn: AsyncConnection, note_id: int, spec: NoteSpec,
                      now: datetime) -> None:
    await conn.execute(update(status_notes).where(n.id == note_id).values(
        status=spec.status, body=spec.text, incident_id=spec.incident_id,
        version=n.version + 1, updated_at=now))


async def delete_note(conn: AsyncConnection, note_id: int) -> None:
    await conn.execute(delete(status_notes).where(n.id == note_id))


async def note_rows(conn: AsyncConnection, page_id: int, *, note_id: int | None = None,
                    before: int | None = None, limit: int | None = None) -> Sequence[Any]:
    """A page's notes, newest first (one, or a page of the list before ``before``)."""
    query = select(status_notes).where(n.page_id == page_id).order_by(n.id.desc())
    if note_id is not None:
        query = query.where(n.id == note_id)
    if before is not None:
        query = query.where(n.id < before)
    if limit is not None:
        query = query.limit(limit)
    return (await conn.execute(query)).all()
