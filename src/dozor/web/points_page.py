"""Contact points: adding one to a contact, a point's page (status, the consent ledger),
its confirmation (send a code, type it back; Telegram's deep link) and removing it.

All through ``api.points``'s route functions: who may, the rate limits of codes, the
counting of wrong codes and the audit log stay in one place. Its confirm route *returns*
a wrong code's problem instead of raising it, so the transaction commits and the try
counts; this page keeps that by committing too and showing the problem."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from dozor.api import contacts as api_contacts
from dozor.api import personal_reads
from dozor.api import points as api_points
from dozor.api.deps import Id
from dozor.api.problems import Problem
from dozor.api.security import Principal
from dozor.notify.contacts import ESCALATION_MINUTES, EVENTS, PointSpec
from dozor.store.db import write_transaction
from dozor.web import contacts_page
from dozor.web.recipients_common import (
    RecipientsRoute,
    database,
    field_errors,
    form_list,
    reader,
    see_other,
    spec,
    writer,
)
from dozor.web.render import render

router = APIRouter(include_in_schema=False, route_class=RecipientsRoute)
LEDGER = 500  # consent records shown; a point gathers a handful in its life


def usage_values(form: dict[str, str], events: list[str]) -> dict[str, Any]:
    """How a point is used, from the form's fields; numbers left as typed when they are not
    numbers, so the spec names the field.

    >>> usage_values({"escalation_minutes": "5", "priority": "x"}, ["down"])
    {'events': ['down'], 'escalation_minutes': 5, 'priority': 'x'}
    """
    values: dict[str, Any] = {"events": events}
    for key in ("escalation_minutes", "priority"):
        typed = form.get(key, "").strip() or "0"
        values[key] = int(typed) if typed.isdigit() else typed
    return values


def point_values(form: dict[str, str], events: list[str]) -> dict[str, Any]:
    """A new point's fields from the form's.

    >>> point_values({"kind": "sms", "address": " +48 600 "}, ["down"])["address"]
    '+48 600'
    """
    return {"kind": form.get("kind", ""), "address": form.get("address", "").strip(),
            **usage_values(form, events)}


@router.post("/contacts/{contact_id}/points")
async def add_point(request: Request, contact_id: Id) -> Response:
    form, who = await writer(request)
    events = await form_list(request, "events")
    try:
        async with write_transaction(database(request)) as conn:
            created = await api_points.create_point(
                contact_id, spec(PointSpec, point_values(form, events)), who, conn,
                request, Response())
    except Problem as problem:
        if problem.status == 404:
            raise
        typed = form | {"events": events}
        return await contacts_page.show_contact(request, contact_id, None, {}, typed,
                                                 field_errors(problem), problem.status)
    return see_other(f"/points/{created['id']}")


@router.get("/points/{point_id}")
async def point_page(request: Request, point_id: Id) -> Response:
    sent = request.query_params.get("sent") == "1"
    return await _page(request, point_id, {}, sent=sent)


async def _page(request: Request, point_id: int, errors: dict[str, str], *,
                sent: bool = False, deep_link: str | None = None,
                usage: dict[str, Any] | None = None, status: int = 200) -> Response:
    """The point, its ledger, and the forms; ``usage``: what was typed into the form
    changing its use, else the stored values."""
    who, user = await reader(request)
    await personal_reads.noted_by_page(request, database(request), who,
                                       "contact points and consents")
    async with database(request).connect() as conn:
        point = await api_points.get_point(point_id, who, conn, Response())
        contact = await api_contacts.get_contact(point["contact_id"], who, conn, Response())
        ledger = await api_points.point_consents(point_id, who, conn, limit=LEDGER,
                                                 cursor=None)
    return render(request, "point.html", {
        "who": who, "user": user, "point": point, "contact": contact,
        "ledger": ledger["items"], "errors": errors, "sent": sent, "deep_link": deep_link,
        "usage": usage or point, "events": EVENTS, "escalations": ESCALATION_MINUTES},
        status=status)


@router.post("/points/{point_id}/verify")
async def send_code(request: Request, point_id: Id) -> Response:
    _, who = await writer(request)
    try:
        async with write_transaction(database(request)) as conn:
            started = await api_points.verify_point(point_id, who, conn, request,
                                                    request.app.state.settings)
    except Problem as problem:
        if problem.status == 404:
            raise
        return await _page(request, point_id, field_errors(problem), status=problem.status)
    if started["deep_link"] is not None:
        # Shown once, not redirected to: only its digest is stored, so a later page
        # cannot show it again, and it must not sit in a URL or the browser's history.
        return await _page(request, point_id, {}, deep_link=started["deep_link"])
    return see_other(f"/points/{point_id}?sent=1")


@router.post("/points/{point_id}/confirm")
async def confirm(request: Request, point_id: Id) -> Response:
    form, who = await writer(request)
    try:
        body = spec(api_points.Code, {"code": form.get("code", "").strip()})
        async with write_transaction(database(request)) as conn:
            answer = await api_points.confirm_point(point_id, body, who, conn, request,
                                                    Response())
    except Problem as problem:
        if problem.status == 404:
            raise
        return await _page(request, point_id, field_errors(problem), status=problem.status)
    if isinstance(answer, JSONResponse):  # a wrong code: committed, so it counted
        return await _page(request, point_id, _returned_errors(answer),
                           status=answer.status_code)
    return see_other(f"/points/{point_id}")


def _returned_errors(answer: JSONResponse) -> dict[str, str]:
    problem = json.loads(bytes(answer.body))
    return field_errors(Problem(answer.status_code, problem["detail"],
                                errors=problem.get("errors", [])))


@router.post("/points/{point_id}/edit")
async def change_use(request: Request, point_id: Id) -> Response:
    """Events, escalation and priority; kind and address stay (a new address is a new
    point, with its own confirmation), so the form has no such fields."""
    form, who = await writer(request)
    usage = usage_values(form, await form_list(request, "events"))
    try:
        async with write_transaction(database(request)) as conn:
            await api_points.patch_point(point_id, who, conn, request, Response(), usage,
                                         f'"{form.get("version", "")}"')
    except Problem as problem:
        if problem.status == 404:
            raise
        return await _page(request, point_id, field_errors(problem), usage=usage,
                           status=problem.status)
    return see_other(f"/points/{point_id}")


@router.post("/points/{point_id}/delete")
async def remove_point(request: Request, point_id: Id) -> Response:
    _, who = await writer(request)
    async with write_transaction(database(request)) as conn:
        contact_id = await _contact_of(conn, who, point_id)
        await api_points.delete_point(point_id, who, conn, request, if_match=None)
    return see_other(f"/contacts/{contact_id}")


async def _contact_of(conn: Any, who: Principal, point_id: int) -> int:
    return int((await api_points.get_point(point_id, who, conn, Response()))["contact_id"])
