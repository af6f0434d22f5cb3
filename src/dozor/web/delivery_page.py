"""The delivery log: messages newest first (event, status, contact, point kind, channel,
attempts, times) and one message with every attempt. Both come from ``api.messages``,
which withholds the text of messages carrying a one-time code and never shows a
channel's settings; the page shows only what those views give.

The log is organisation-wide: sub-accounts are refused, as the API refuses them."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Request, Response

from dozor.api import messages as api_messages
from dozor.api import personal_reads
from dozor.api.deps import Id
from dozor.api.problems import Problem
from dozor.web import access
from dozor.web.errors import PageRoute
from dozor.web.render import render

# A refusal (a Problem) answers as a page that says why, as on the foundation's pages.
router = APIRouter(include_in_schema=False, route_class=PageRoute)
SHOWN = 200
STATUSES: tuple[str, ...] = get_args(api_messages.Status)


async def _list(conn: Any, who: Any, status: str | None, incident: int | None,
                cursor: str | None) -> dict[str, Any]:
    """A page of the log: ``items`` and the ``next_cursor`` of older ones."""
    page: dict[str, Any] = await api_messages.list_messages(
        who, conn, limit=SHOWN, cursor=cursor, state=status,  # type: ignore[arg-type]
        contact_id=None, point_id=None, incident_id=incident, monitor_id=None, start=None,
        end=None)
    return page


@router.get("/messages")
async def messages_list(request: Request) -> Response:
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    if who.restricted:
        return access.forbidden_page(request, who, user)
    status = request.query_params.get("status")
    status = status if status in STATUSES else None
    incident = access.id_param(request.query_params.get("incident"))
    cursor = access.cursor_param(request.query_params.get("cursor"))
    await personal_reads.noted_by_page(request, access.database(request), who, "delivery log")
    async with access.database(request).connect() as conn:
        page = await _list(conn, who, status, incident, cursor)
    return render(request, "messages.html", {
        "who": who, "user": user, "items": page["items"], "older": page["next_cursor"],
        "status": status, "statuses": STATUSES, "incident": incident})


@router.get("/messages/{message_id}")
async def message_page(request: Request, message_id: Id) -> Response:
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    if who.restricted:
        return access.forbidden_page(request, who, user)
    await personal_reads.noted_by_page(request, access.database(request), who, "delivery log")
    try:
        async with access.database(request).connect() as conn:
            message = await api_messages.get_message(message_id, who, conn)
    except Problem as problem:
        if problem.status != 404:
            raise
        return access.not_found_page(request, who, user)
    return render(request, "message.html", {"who": who, "user": user, "m": message})
