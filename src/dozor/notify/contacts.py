"""Contacts and their contact points: what people write, validated, and stored.

Every point starts unconfirmed; nothing but its confirmation message reaches it until its
holder confirms (see ``consent``). Addresses are normalised by their kind, so one number
written two ways is one point.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.notify import bulk, policies
from dozor.notify.hours import ActiveHoursSpec
from dozor.notify.points import POINT_KINDS, normalise_address
from dozor.notify.templates import LANGUAGES
from dozor.privacy import keys
from dozor.store import notify_tables as n

EVENTS = ("down", "up", "expiry", "reports", "billing")
ESCALATION_MINUTES = (0, 5, 15, 30, 60, 180, 720)
PENDING_PREFIX = "pending:"  # a Telegram point before its chat is known


class ContactSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    timezone: str = "UTC"
    language: str = "en"
    is_owner: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("language")
    @classmethod
    def _supported_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
        return value


class PointSpec(BaseModel):
    """A contact point as people write it.

    >>> PointSpec(kind="sms", address="+48 600 100 200").address
    '+48600100200'
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal[tuple(POINT_KINDS)]  # type: ignore[valid-type]
    address: str = Field("", max_length=500)
    events: list[Literal[EVENTS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["down", "up", "expiry"])
    active_hours: ActiveHoursSpec | None = None
    outside_hours: Literal["hold", "next"] = "hold"
    escalation_minutes: int = 0
    priority: int = Field(0, ge=0, le=1000)
    secret: str | None = Field(None, max_length=200)

    @field_validator("escalation_minutes")
    @classmethod
    def _offered_delay(cls, value: int) -> int:
        if value not in ESCALATION_MINUTES:
            raise ValueError(f"must be one of {', '.join(map(str, ESCALATION_MINUTES))}")
        return value

    @model_validator(mode="after")
    def _normalised_address(self) -> PointSpec:
        if self.kind == "telegram" and not self.address:
            return self  # confirmed through the bot's deep link, which tells us the chat
        try:
            self.address = normalise_address(self.kind, self.address)
        except ValueError as error:
            raise ValueError(f"address: {error}") from None
        return self


async def add_contact(connection: AsyncConnection, org_id: int, spec: ContactSpec,
                      now: datetime) -> int:
    row = spec.model_dump() | {"org_id": org_id, "created_at": now}
    result = await connection.execute(insert(n.contacts).values(row).returning(n.contacts.c.id))
    return int(result.scalar_one())


async def add_point(connection: AsyncConnection, org_id: int, contact_id: int,
                    spec: PointSpec, now: datetime) -> int:
    """Store a new, unconfirmed point; may suspend the account if it looks like bulk."""
    address = spec.address or PENDING_PREFIX + secrets.token_hex(8)
    row: dict[str, Any] = {
        "org_id": org_id, "contact_id": contact_id, "kind": spec.kind,
        "address": await keys.personal(connection, org_id, address),
        "address_digest": await keys.digest_of(connection, spec.kind, address),
        "secret": spec.secret, "priority": spec.priority, "events": list(spec.events),
        "active_hours": spec.active_hours.to_json() if spec.active_hours else None,
        "outside_hours": spec.outside_hours, "escalation_minutes": spec.escalation_minutes,
        "unsubscribe_token": secrets.token_urlsafe(24), "created_at": now}
    result = await connection.execute(
        insert(n.contact_points).values(row).returning(n.contact_points.c.id))
    point_id = int(result.scalar_one())
    await bulk.check_and_suspend(connection, org_id, now)
    return point_id


async def update_contact(connection: AsyncConnection, contact_id: int,
                         spec: ContactSpec) -> None:
    c = n.contacts.c
    await connection.execute(update(n.contacts).where(c.id == contact_id)
                             .values(**spec.model_dump(), version=c.version + 1))


def contact_fields(row: Any) -> dict[str, Any]:
    """A stored contact as its spec's fields (what a change is merged onto)."""
    return {key: getattr(row, key) for key in ContactSpec.model_fields}


def point_fields(row: Any) -> dict[str, Any]:
    """A stored point as its spec's fields (what a change is merged onto). A Telegram point
    whose chat is not known yet has no address."""
    return {key: getattr(row, key) for key in PointSpec.model_fields} | {
        "address": shown_address(row.address) or ""}


def shown_address(address: str) -> str | None:
    """The address as people know it; None while a Telegram point waits for its chat.

    >>> shown_address("+48600100200"), shown_address(PENDING_PREFIX + "0a1b")
    ('+48600100200', None)
    """
    return None if address.startswith(PENDING_PREFIX) else address


async def update_point(connection: AsyncConnection, point_id: int, spec: PointSpec) -> None:
    """Change how a point is used. Its kind and address stay: a new address is a new point,
    which needs its own confirmation."""
    p = n.contact_points.c
    await connection.execute(update(n.contact_points).where(p.id == point_id).values(
        events=list(spec.events), priority=spec.priority, secret=spec.secret,
        active_hours=spec.active_hours.to_json() if spec.active_hours else None,
        outside_hours=spec.outside_hours, escalation_minutes=spec.escalation_minutes,
        version=p.version + 1))


def point_status(point: Mapping[str, Any]) -> str:
    """``opted_out``, ``failing``, ``confirmed`` or ``unconfirmed`` (the first that holds):
    an opt-out outweighs everything, and a failing point gets nothing until confirmed again.

    >>> point_status({"confirmed_at": 1, "opted_out_at": None, "failing_since": None})
    'confirmed'
    """
    if point["opted_out_at"] is not None:
        return "opted_out"
    if point["failing_since"] is not None:
        return "failing"
    return "confirmed" if point["confirmed_at"] is not None else "unconfirmed"


async def find_point(connection: AsyncConnection, org_id: int, kind: str,
                     address: str) -> int | None:
    """The organisation's point with this (normalised) address, if it has one."""
    p = n.contact_points.c
    digest = await keys.digest_of(connection, kind, address)
    found = await connection.execute(select(p.id).where(
        p.org_id == org_id, p.kind == kind, p.address_digest == digest))
    return found.scalar_one_or_none()


async def find_contact(connection: AsyncConnection, org_id: int, name: str) -> int | None:
    c = n.contacts.c
    found = await connection.execute(select(c.id).where(c.org_id == org_id, c.name == name))
    return found.scalar_one_or_none()


async def list_points(connection: AsyncConnection, org_id: int) -> list[dict[str, Any]]:
    c, p = n.contacts.c, n.contact_points.c
    rows = await connection.execute(
        select(p.id, c.name.label("contact"), p.kind, p.address, p.priority, p.events,
               p.escalation_minutes, p.confirmed_at, p.opted_out_at, p.failing_since,
               p.failing_reason)
        .join(n.contacts, c.id == p.contact_id).where(p.org_id == org_id)
        .order_by(c.name, p.priority, p.id))
    return [dict(row) for row in rows.mappings()]


async def remove_contact(connection: AsyncConnection, org_id: int, contact_id: int) -> None:
    """Remove a contact with their points (the consent ledger keeps its records), and take
    them out of the policies that name them."""
    await policies.forget_contact(connection, org_id, contact_id)
    c = n.contacts.c
    await connection.execute(delete(n.contacts).where(c.id == contact_id, c.org_id == org_id))


async def remove_point(connection: AsyncConnection, org_id: int, point_id: int) -> bool:
    p = n.contact_points.c
    result = await connection.execute(
        delete(n.contact_points).where(p.id == point_id, p.org_id == org_id))
    return bool(result.rowcount)
