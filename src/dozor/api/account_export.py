"""``GET /api/v1/account/export``: the organisation's data as one zip archive
(``privacy.export``), streamed; ``GET /api/v1/contacts/{id}/export``: what is held about
one contact (a person who gets alerts, perhaps without an account). Owners and admins
only; each export is in the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from dozor.api.deps import Id, database, principal
from dozor.api.problems import Problem
from dozor.api.security import client_ip
from dozor.privacy import audit, export
from dozor.store import notify_tables as n
from dozor.store.db import write_transaction

router = APIRouter(tags=["account"])
ZIP: dict[int | str, dict[str, Any]] = {200: {"content": {"application/zip": {}},
             "description": "A zip archive: one JSON Lines file per table and "
                            "manifest.json (docs/privacy.md)."}}


@router.get("/account/export", response_class=StreamingResponse, responses=ZIP)
async def export_account(request: Request) -> StreamingResponse:
    return await _export(request, None)


@router.get("/contacts/{contact_id}/export", response_class=StreamingResponse,
            responses=ZIP)
async def export_contact(request: Request, contact_id: Id) -> StreamingResponse:
    return await _export(request, contact_id)


async def _export(request: Request, contact_id: int | None) -> StreamingResponse:
    # Not the request's transaction (``deps.Connection``): that one would stay open, with
    # SQLite's write lock, until the whole archive had streamed. The audit record commits
    # first; the archive is read on a connection of its own.
    engine = database(request)
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        caller = await principal(request, conn)
        caller.require("admin")
        target = f"organisation {caller.org_id}"
        if contact_id is not None:
            c = n.contacts.c
            found = (await conn.execute(select(c.id).where(
                c.id == contact_id, c.org_id == caller.org_id))).first()
            if found is None:
                raise Problem(404, "contact not found")
            target = f"contact {contact_id}"
        await audit.record(conn, "export", org_id=caller.org_id, user_id=caller.user_id,
                           ip=client_ip(request), target=target)

    async def pieces() -> AsyncIterator[bytes]:
        async with engine.connect() as reading:
            async for piece in export.archive(reading, caller.org_id, now, contact_id):
                yield piece

    who = f"{caller.org_id}" + (f"-contact-{contact_id}" if contact_id else "")
    name = f"dozor-export-{who}-{now:%Y%m%d-%H%M%S}.zip"
    return StreamingResponse(pieces(), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})
