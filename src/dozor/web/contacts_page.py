"""Contacts: the list with each contact's points and their status, a contact's page (edit,
add a point, delete), adding one. Everything is read and changed through the API's route
functions (``api.contacts``, ``api.points``), so roles, versions, the audit log and the
rule that a policy's only recipient stays apply unchanged."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api import contacts as api_contacts
from dozor.api import personal_reads
from dozor.api import points as api_points
from dozor.api.deps import Id
from dozor.api.problems import Problem
from dozor.api.security import Principal
from dozor.notify.contacts import ESCALATION_MINUTES, EVENTS, ContactSpec
from dozor.notify.points import POINT_KINDS
from dozor.notify.templates import LANGUAGES
from dozor.store import notify_tables as n
from dozor.store.db import write_transaction
from dozor.web.recipients_common import (
    RecipientsRoute,
    database,
    field_errors,
    reader,
    see_other,
    spec,
    writer,
)
from dozor.web.render import render

router = APIRouter(include_in_schema=False, route_class=RecipientsRoute)
SHOWN = 500  # contacts on the page (the API's largest page); an account has a few dozen
NEW_POINT = {"kind": "email", "events": ["down", "up", "expiry"], "escalation_minutes": "0",
             "priority": "0"}


def contact_values(form: dict[str, str]) -> dict[str, Any]:
    """The API's contact fields from the form's.

    >>> contact_values({"name": " Ola ", "timezone": "", "language": "pl"})
    {'name': 'Ola', 'timezone': 'UTC', 'language': 'pl'}
    """
    return {"name": form.get("name", "").strip(),
            "timezone": form.get("timezone", "").strip() or "UTC",
            "language": form.get("language", "en")}


async def _with_points(conn: AsyncConnection, who: Principal,
                       contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The contacts, each with its points in one statement for them all; each point in the
    API's own view, so a viewer gets it without its address exactly as there."""
    p = n.contact_points.c
    rows = (await conn.execute(
        select(n.contact_points)
        .where(p.org_id == who.org_id, p.contact_id.in_([c["id"] for c in contacts]))
        .order_by(p.priority, p.id))).all()
    points: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        points.setdefault(row.contact_id, []).append(api_points.point_view(row, who))
    return [c | {"points": points.get(c["id"], [])} for c in contacts]


@router.get("/contacts")
async def contacts_list(request: Request) -> Response:
    return await _list_page(request, {"timezone": "UTC", "language": "en"}, {})


async def _list_page(request: Request, form: dict[str, str], errors: dict[str, str],
                     status: int = 200) -> Response:
    who, user = await reader(request)
    await personal_reads.noted_by_page(request, database(request), who, "contacts")
    async with database(request).connect() as conn:
        listed = await api_contacts.list_contacts(who, conn, limit=SHOWN, cursor=None)
        shown = await _with_points(conn, who, listed["items"])
    return render(request, "contacts.html", {
        "who": who, "user": user, "contacts": shown, "form": form, "errors": errors,
        "languages_offered": LANGUAGES}, status=status)


@router.post("/contacts")
async def add_contact(request: Request) -> Response:
    form, who = await writer(request)
    try:
        async with write_transaction(database(request)) as conn:
            created = await api_contacts.create_contact(
                spec(ContactSpec, contact_values(form)), who, conn, request, Response())
    except Problem as problem:
        return await _list_page(request, form, field_errors(problem), problem.status)
    return see_other(f"/contacts/{created['id']}")


@router.get("/contacts/{contact_id}")
async def contact_page(request: Request, contact_id: Id) -> Response:
    return await show_contact(request, contact_id, None, {}, NEW_POINT, {})


async def show_contact(request: Request, contact_id: int, edit: dict[str, str] | None,
                        edit_errors: dict[str, str], point: dict[str, Any],
                        point_errors: dict[str, str], status: int = 200) -> Response:
    """The contact with the edit form (``edit``: what was typed, else the stored fields)
    and the form adding a point, each with its own errors."""
    who, user = await reader(request)
    await personal_reads.noted_by_page(request, database(request), who, "contacts")
    async with database(request).connect() as conn:
        contact = await api_contacts.get_contact(contact_id, who, conn, Response())
        [contact] = await _with_points(conn, who, [contact])
    return render(request, "contact.html", {
        "who": who, "user": user, "contact": contact,
        "edit": edit if edit is not None else contact, "edit_errors": edit_errors,
        "point": point, "point_errors": point_errors, "languages_offered": LANGUAGES,
        "kinds": sorted(POINT_KINDS), "events": EVENTS, "escalations": ESCALATION_MINUTES},
        status=status)


@router.post("/contacts/{contact_id}/edit")
async def edit_contact(request: Request, contact_id: Id) -> Response:
    form, who = await writer(request)
    try:
        async with write_transaction(database(request)) as conn:
            await api_contacts.patch_contact(contact_id, who, conn, request, Response(),
                                             contact_values(form),
                                             f'"{form.get("version", "")}"')
    except Problem as problem:
        if problem.status == 404:
            raise
        return await show_contact(request, contact_id, form, field_errors(problem),
                                   NEW_POINT, {}, problem.status)
    return see_other(f"/contacts/{contact_id}")


@router.post("/contacts/{contact_id}/delete")
async def delete_contact(request: Request, contact_id: Id) -> Response:
    _, who = await writer(request)
    try:
        async with write_transaction(database(request)) as conn:
            await api_contacts.delete_contact(contact_id, who, conn, request, if_match=None)
    except Problem as problem:
        if problem.status != 409:  # the only recipient of a policy: say so on its page
            raise
        return await show_contact(request, contact_id, None, field_errors(problem),
                                   NEW_POINT, {}, problem.status)
    return see_other("/contacts")
