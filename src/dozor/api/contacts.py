"""Contacts: the people who receive alerts (name, time zone, language, and whether they
hear about the account's own trouble). Their contact points are in ``api.points``.

Every contact carries a ``version``; a change needs ``If-Match`` with the version read
(412 when it moved on, 428 without it), as monitors do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from sqlalchemy import select

from dozor.api import paging, personal_reads
from dozor.api.deps import Caller, Connection, Id
from dozor.api.problems import Problem
from dozor.api.recipients import conflict, contact_row, merged, moment, record, tagged
from dozor.api.versions import check_version
from dozor.notify import contacts, policies
from dozor.notify.contacts import ContactSpec
from dozor.store import notify_tables as n

router = APIRouter(tags=["contacts"], dependencies=[personal_reads.recorded("contacts")])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/contacts")
async def list_contacts(caller: Caller, conn: Connection, limit: Limit = 100,
                        cursor: str | None = None) -> dict[str, Any]:
    c = n.contacts.c
    rows = (await conn.execute(
        select(n.contacts).where(c.org_id == caller.org_id, c.id > (paging.decode(cursor) or 0))
        .order_by(c.id).limit(limit + 1))).all()
    return paging.page(rows, limit, _view)


@router.post("/contacts", status_code=201)
async def create_contact(body: ContactSpec, caller: Caller, conn: Connection,
                         request: Request, response: Response) -> dict[str, Any]:
    """A person who may receive alerts; add their points at ``/contacts/{id}/points``."""
    caller.require("member", write=True)
    await _name_free(conn, caller.org_id, body.name)
    contact_id = await contacts.add_contact(conn, caller.org_id, body, datetime.now(UTC))
    await record(conn, request, caller, "contact_created", f"contact {contact_id}")
    response.headers["Location"] = f"/api/v1/contacts/{contact_id}"
    return await _respond(conn, caller.org_id, contact_id, response)


@router.get("/contacts/{contact_id}")
async def get_contact(contact_id: Id, caller: Caller, conn: Connection,
                      response: Response) -> dict[str, Any]:
    return await _respond(conn, caller.org_id, contact_id, response)


@router.patch("/contacts/{contact_id}")
async def patch_contact(contact_id: Id, caller: Caller, conn: Connection, request: Request,
                        response: Response, body: Annotated[dict[str, Any], Body()],
                        if_match: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Change some fields (a JSON merge patch: ``null`` resets a field to its default)."""
    caller.require("member", write=True)
    row = await contact_row(conn, caller.org_id, contact_id)
    check_version("contact", row.version, if_match)
    spec = merged(ContactSpec, contacts.contact_fields(row), body)
    if spec.name != row.name:
        await _name_free(conn, caller.org_id, spec.name)
    await contacts.update_contact(conn, contact_id, spec)
    await record(conn, request, caller, "contact_changed", f"contact {contact_id}")
    return await _respond(conn, caller.org_id, contact_id, response)


@router.delete("/contacts/{contact_id}", status_code=204)
async def delete_contact(contact_id: Id, caller: Caller, conn: Connection, request: Request,
                         if_match: Annotated[str | None, Header()] = None) -> None:
    """Remove a contact and their points (the consent ledger keeps its records). Refused
    while the contact is the only recipient of a policy: change the policy first, or its
    monitors' alerts would reach nobody."""
    caller.require("member", write=True)
    row = await contact_row(conn, caller.org_id, contact_id)
    if if_match is not None:
        check_version("contact", row.version, if_match)
    alone_in = await policies.only_recipient_of(conn, caller.org_id, contact_id)
    if alone_in:
        raise Problem(409, f"the contact is the only recipient of the alert policies "
                      f"{', '.join(alone_in)}; change or delete them first")
    await contacts.remove_contact(conn, caller.org_id, contact_id)
    await record(conn, request, caller, "contact_deleted", f"contact {contact_id}")


async def _name_free(conn: Any, org_id: int, name: str) -> None:
    if await contacts.find_contact(conn, org_id, name) is not None:
        raise conflict("name", f"a contact named {name!r} exists")


async def _respond(conn: Any, org_id: int, contact_id: int,
                   response: Response) -> dict[str, Any]:
    return tagged(response, _view(await contact_row(conn, org_id, contact_id)))


def _view(row: Any) -> dict[str, Any]:
    return {"id": row.id, **contacts.contact_fields(row),
            "version": row.version, "created_at": moment(row.created_at)}
