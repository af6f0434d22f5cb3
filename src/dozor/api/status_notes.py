"""Notes on a status page: updates for visitors, statuspage.io style, each a status
(investigating, identified, monitoring, resolved, maintenance, info) and a text,
optionally about one of the organisation's incidents::

    {"status": "identified", "text": "A faulty switch; it is being replaced.",
     "incident_id": 12}

Members and write tokens add, change and delete them; viewers read. A note carries a
``version``; changing it needs ``If-Match`` with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import paging
from dozor.api.deps import Caller, Connection, Id
from dozor.api.problems import Problem, invalid
from dozor.api.status_pages import page, validated
from dozor.api.status_public import base_url
from dozor.api.versions import check_version, etag
from dozor.config.status_pages import NoteSpec
from dozor.notify import subscriber_mail
from dozor.store import status_pages as store
from dozor.store import status_subscribers

router = APIRouter(tags=["status pages"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/status-pages/{page_id}/notes")
async def list_notes(page_id: Id, caller: Caller, conn: Connection, limit: Limit = 100,
                     cursor: str | None = None) -> dict[str, Any]:
    """The page's notes, newest first."""
    await page(conn, caller.org_id, page_id)
    rows = await store.note_rows(conn, page_id, before=paging.decode(cursor), limit=limit + 1)
    return paging.page(rows, limit, _view)


@router.post("/status-pages/{page_id}/notes", status_code=201)
async def add_note(page_id: Id, body: NoteSpec, caller: Caller, conn: Connection,
                   request: Request, response: Response) -> dict[str, Any]:
    """Add a note; a published page's confirmed email subscribers are sent it (queued in
    this transaction, so a note that fails to save mails nobody)."""
    caller.require("member", write=True)
    row = await page(conn, caller.org_id, page_id)
    await _check_incident(conn, caller.org_id, body)
    now = datetime.now(UTC)
    note_id = await store.add_note(conn, page_id, body, caller.user_id, now)
    if row.published:
        await subscriber_mail.note_posted(
            conn, caller.org_id, row, note_id, body.status, body.text,
            await status_subscribers.confirmed(conn, page_id), base_url(request), now)
    response.headers["Location"] = f"/api/v1/status-pages/{page_id}/notes/{note_id}"
    return await _answer(conn, page_id, note_id, response)


@router.get("/status-pages/{page_id}/notes/{note_id}")
async def get_note(page_id: Id, note_id: Id, caller: Caller, conn: Connection,
                   response: Response) -> dict[str, Any]:
    await page(conn, caller.org_id, page_id)
    return await _answer(conn, page_id, note_id, response)


@router.patch("/status-pages/{page_id}/notes/{note_id}")
async def change_note(page_id: Id, note_id: Id, caller: Caller, conn: Connection,
                      response: Response, body: Annotated[dict[str, Any], Body()],
                      if_match: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Change some fields (a JSON merge patch: ``"incident_id": null`` unlinks it)."""
    caller.require("member", write=True)
    await page(conn, caller.org_id, page_id)
    row = await _note(conn, page_id, note_id)
    current = {"status": row.status, "text": row.body, "incident_id": row.incident_id}
    spec = validated(NoteSpec, current | body)
    check_version("note", row.version, if_match)
    await _check_incident(conn, caller.org_id, spec)
    await store.change_note(conn, note_id, spec, datetime.now(UTC))
    return await _answer(conn, page_id, note_id, response)


@router.delete("/status-pages/{page_id}/notes/{note_id}", status_code=204)
async def delete_note(page_id: Id, note_id: Id, caller: Caller, conn: Connection,
                      if_match: Annotated[str | None, Header()] = None) -> None:
    caller.require("member", write=True)
    await page(conn, caller.org_id, page_id)
    row = await _note(conn, page_id, note_id)
    if if_match is not None:
        check_version("note", row.version, if_match)
    await store.delete_note(conn, note_id)


async def _note(conn: AsyncConnection, page_id: int, note_id: int) -> Any:
    rows = await store.note_rows(conn, page_id, note_id=note_id)
    if not rows:
        raise Problem(404, f"no note {note_id} on status page {page_id}")
    return rows[0]


async def _check_incident(conn: AsyncConnection, org_id: int, spec: NoteSpec) -> None:
    if spec.incident_id is not None and not await store.own_incident(conn, org_id,
                                                                      spec.incident_id):
        raise invalid([("incident_id", f"no incident {spec.incident_id} in this "
                        "organisation")])


async def _answer(conn: AsyncConnection, page_id: int, note_id: int,
                  response: Response) -> dict[str, Any]:
    row = await _note(conn, page_id, note_id)
    response.headers["ETag"] = etag(row.version)
    return _view(row)


def _view(row: Any) -> dict[str, Any]:
    return {"id": row.id, "status": row.status, "text": row.body,
            "incident_id": row.incident_id, "author_id": row.author_id,
            "version": row.version, "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat() if row.updated_at else None}
