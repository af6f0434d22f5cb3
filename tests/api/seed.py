"""What the engine and the notifier would have written, put straight into the database
for API tests: incidents with their state changes, contacts, channels, messages."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.notify import contacts
from dozor.privacy import keys
from dozor.store import notify_tables as n
from dozor.store import tables as t
from dozor.store.db import create_engine

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


async def point_address(connection: AsyncConnection, org_id: int, kind: str,
                        address: str) -> dict[str, Any]:
    """A contact point's address as a raw insert writes it: sealed, with its digest."""
    return {"address": await keys.personal(connection, org_id, address),
            "address_digest": await keys.digest_of(connection, kind, address)}


async def subscriber_email(connection: AsyncConnection, org_id: int,
                           email: str) -> dict[str, Any]:
    """A status subscriber's address as a raw insert writes it (``org_id``: the page's)."""
    return {"email": await keys.personal(connection, org_id, email),
            "email_digest": await keys.digest_of(connection, "email", email)}


@asynccontextmanager
async def database(database_url: str) -> AsyncIterator[AsyncConnection]:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            yield connection
    finally:
        await engine.dispose()


async def incident(connection: AsyncConnection, org_id: int, monitor_id: int,
                   opened_at: datetime = AT, closed_at: datetime | None = None,
                   cause: str = "connection refused") -> int:
    """An incident with the state changes that opened (and closed) it."""
    incident_id = int((await connection.execute(insert(t.incidents).values(
        org_id=org_id, monitor_id=monitor_id, opened_at=opened_at, closed_at=closed_at,
        cause=cause, first_error=3, resolution="recovered" if closed_at else None,
    ).returning(t.incidents.c.id))).scalar_one())
    changes = [(opened_at, "pending", "down", cause)]
    if closed_at is not None:
        changes.append((closed_at, "down", "up", None))
    await connection.execute(insert(t.state_changes), [
        {"org_id": org_id, "monitor_id": monitor_id, "at": at, "previous": previous,
         "current": current, "flapping": False, "incident_id": incident_id, "reason": reason}
        for at, previous, current, reason in changes])
    return incident_id


async def contact(connection: AsyncConnection, org_id: int, name: str,
                  points: list[dict[str, Any]]) -> tuple[int, list[int]]:
    """A contact and its (confirmed) points: (contact id, point ids)."""
    contact_id = await contacts.add_contact(connection, org_id,
                                            contacts.ContactSpec(name=name), AT)
    ids = [await contacts.add_point(connection, org_id, contact_id,
                                    contacts.PointSpec(**point), AT) for point in points]
    await connection.execute(n.contact_points.update().where(n.contact_points.c.id.in_(ids))
                             .values(confirmed_at=AT))
    return contact_id, ids


async def channel(connection: AsyncConnection, name: str, config: dict[str, Any]) -> int:
    return int((await connection.execute(insert(n.notify_channels).values(
        name=name, kind="smsapi", config=config, priority=0, enabled=True,
        callback_token=secrets.token_urlsafe(16), created_at=AT,
    ).returning(n.notify_channels.c.id))).scalar_one())


async def message(connection: AsyncConnection, org_id: int, **fields: Any) -> int:
    """A message row; say at least ``point_id`` and ``contact_id`` (or None)."""
    created = fields.pop("created_at", AT)
    values = {"org_id": org_id, "event": "down", "idempotency_key": secrets.token_hex(8),
              "subject": "DOWN: shop", "body": "Monitor shop is down.", "language": "en",
              "status": "queued", "due_at": created + timedelta(minutes=15), "attempts": 0,
              "tracked": True, "created_at": created} | fields
    if isinstance(values.get("to_address"), str):
        values["to_address"] = await keys.personal(connection, org_id, values["to_address"])
    return int((await connection.execute(insert(n.messages).values(**values)
                                         .returning(n.messages.c.id))).scalar_one())
