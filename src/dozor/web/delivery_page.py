"""The delivery log: messages newest first (event, status, contact, point kind, channel,
attempts, times) and one message with every attempt. Both come from ``api.messages``,
which withholds the text of messages carrying a one-time code and never shows a
channel's settings; the page shows only what those views give.

The log is organisation-wide: sub-accounts are refused, as the API refuses them."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Request, Response

from dozor.api import messages as api_messages
from dozor.api.deps import MAX_ID, Id
from dozor.api.problems import Problem
from dozor.web import access
from dozor.web.render import render

router = APIRouter(include_in_schema=False)
SHOWN = 200
STATUSES: tuple[str, ...] = get_args(api_messages.Status)


def incident_of(query: str | None) -> int | None:
    """The incident a list is narrowed to; anything but an id in range shows them all.

    >>> incident_of("12"), incident_of("x"), incident_of("99999999999")
    (12, None, None)
    """
    return int(query) if query and query.isdigit() and 1 <= int(query) <= MAX_ID else None


async def _list(conn: Any, who: Any, status: str | None,
                incident: int | None) -> list[dict[str, Any]]:
    page = await api_messages.list_messages(
        who, conn, limit=SHOWN, cursor=None, state=status,  # type: ignore[arg-type]
        contact_id=None, point_id=None, incident_id=incident, monitor_id=None, start=None,
        end=None)
    items: list[dict[str, Any]] = page["items"]
    return items


@router.get("/messages")
async def messages_list(request: Request) -> Response:
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    if who.restricted:
        return access.forbidden_page(request, who, user)
    status = request.query_params.get("status")
    status = status if status in STATUSES else None
    incident = incident_of(request.query_params.get("incident"))
    async with access.database(request).connect() as conn:
        items = await _list(conn, who, status, incident)
    return render(request, "messages.html", {"who": who, "user": user, "items": items,
                                             "status": status, "statuses": STATUSES,
                                             "incident": incident})


@router.get("/messages/{message_id}")
async def message_page(request: Request, message_id: Id) -> Response:
    who, user = await access.signed_in(request)
    if who is None:
        return access.to_login(request)
    if who.restricted:
        return access.forbidden_page(request, who, user)
    try:
        async with access.database(request).connect() as conn:
            message = await api_messages.get_message(message_id, who, conn)
    except Problem as problem:
        if problem.status != 404:
            raise
        return access.not_found_page(request, who, user)
    return render(request, "message.html", {"who": who, "user": user, "m": message})
