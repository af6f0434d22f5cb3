"""What the routes of alert recipients (contacts, points, policies) share: looking up an
organisation's contact, merging a change, recording it in the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api.problems import Problem, invalid, invalid_input
from dozor.api.security import Principal, client_ip
from dozor.api.versions import etag
from dozor.privacy import audit
from dozor.store import notify_tables as n

Spec = TypeVar("Spec", bound=BaseModel)


async def owned(conn: AsyncConnection, table: Table, org_id: int, row_id: int,
                what: str) -> Any:
    """The organisation's row of ``table`` with this id, or a 404 naming ``what``."""
    row = (await conn.execute(select(table).where(
        table.c.id == row_id, table.c.org_id == org_id))).first()
    if row is None:  # another organisation's is as absent as a deleted one
        raise Problem(404, f"no {what} {row_id}")
    return row


async def contact_row(conn: AsyncConnection, org_id: int, contact_id: int) -> Any:
    return await owned(conn, n.contacts, org_id, contact_id, "contact")


def tagged(response: Response, view: dict[str, Any]) -> dict[str, Any]:
    """The view, with its version as the response's ETag."""
    response.headers["ETag"] = etag(view["version"])
    return view


def merged(spec_class: type[Spec], current: dict[str, Any], patch: dict[str, Any]) -> Spec:
    """A JSON merge patch onto ``current``: given fields replace, ``null`` resets a field
    to its default; the result is validated as a whole (422 naming each bad field)."""
    unknown = [key for key in patch if key not in spec_class.model_fields]
    if unknown:  # even as null: a field nobody may write is no field to reset either
        raise invalid([(key, "Extra inputs are not permitted") for key in unknown])
    values = current | patch
    try:
        return spec_class.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as error:
        raise invalid_input(error.errors()) from None


def conflict(field: str, message: str) -> Problem:
    return Problem(409, f"{field}: {message}", errors=[{"field": field, "message": message}])


async def record(conn: AsyncConnection, request: Request, caller: Principal, action: str,
                 target: str) -> None:
    """An audit record of a change to who gets alerts (never with an address in it)."""
    await audit.record(conn, action, org_id=caller.org_id, user_id=caller.user_id,
                       target=target, ip=client_ip(request))


def moment(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
