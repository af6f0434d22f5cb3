"""``GET /api/v1/account/export``: the organisation's data as one zip archive
(``privacy.export``), streamed. Owners and admins only; each export is in the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from dozor.api.deps import database, principal
from dozor.api.security import client_ip
from dozor.privacy import audit, export
from dozor.store.db import write_transaction

router = APIRouter(tags=["account"])


@router.get("/account/export", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}},
                             "description": "A zip archive: one JSON Lines file per table "
                                            "and manifest.json (docs/privacy.md)."}})
async def export_account(request: Request) -> StreamingResponse:
    # Not the request's transaction (``deps.Connection``): that one would stay open, with
    # SQLite's write lock, until the whole archive had streamed. The audit record commits
    # first; the archive is read on a connection of its own.
    engine = database(request)
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        caller = await principal(request, conn)
        caller.require("admin")
        await audit.record(conn, "export", org_id=caller.org_id, user_id=caller.user_id,
                           ip=client_ip(request), target=f"organisation {caller.org_id}")

    async def pieces() -> AsyncIterator[bytes]:
        async with engine.connect() as reading:
            async for piece in export.archive(reading, caller.org_id, now):
                yield piece

    name = f"dozor-export-{caller.org_id}-{now:%Y%m%d-%H%M%S}.zip"
    return StreamingResponse(pieces(), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})
