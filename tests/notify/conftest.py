"""Helpers for alert-delivery tests: contacts and points in the database, a scripted
in-process channel (the real channels are tested against local provider servers in
``tests/notify/channels``), and a monitor with an open incident."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.config.specs import parse_monitor
from dozor.core.types import MonitorState
from dozor.engine.transitions import StateChange
from dozor.notify import contacts
from dozor.notify.channels.base import (
    ChannelConfig,
    ContactPoint,
    DeliveryError,
    Message,
    Receipt,
)
from dozor.notify.channelset import ChannelEntry, ChannelSet
from dozor.store import monitors as monitor_store
from dozor.store import notify_tables as n
from dozor.store import tables as t

ORG = 1


@dataclass
class ScriptedChannel:
    """A channel whose answers a test lists in order (then it accepts everything)."""

    point_kind: str = "email"
    script: list[DeliveryError | Receipt] = field(default_factory=list)
    sent: list[tuple[Message, ContactPoint]] = field(default_factory=list)
    delay: float = 0.0  # seconds each send takes
    kind: ClassVar[str] = "scripted"
    Config: ClassVar[type[ChannelConfig]] = ChannelConfig

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        self.sent.append((message, point))
        await asyncio.sleep(self.delay)
        answer = self.script.pop(0) if self.script else Receipt(f"p{len(self.sent)}")
        if isinstance(answer, DeliveryError):
            raise answer
        return answer


def channel_set(*channels: ScriptedChannel) -> ChannelSet:
    return ChannelSet([ChannelEntry(None, f"scripted-{i}", "scripted", c.point_kind, i, c)
                       for i, c in enumerate(channels)])


async def add_email_channel(engine: AsyncEngine, smtp_port: int) -> None:
    """The installation's email channel, sending through the SMTP server on this port."""
    async with engine.begin() as connection:
        await connection.execute(insert(n.notify_channels).values(
            name="mail", kind="email", priority=0, enabled=True,
            config={"host": "127.0.0.1", "port": smtp_port, "security": "none",
                    "from-address": "dozor@example.com"},
            callback_token=secrets.token_urlsafe(16), created_at=datetime.now(UTC)))


async def add_contact(engine: AsyncEngine, name: str, points: Sequence[dict[str, Any]],
                      confirmed: bool = True, **contact: Any) -> list[int]:
    """A contact with points (``{"kind": ..., "address": ...}``); returns the point ids."""
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        contact_id = await contacts.add_contact(
            connection, ORG, contacts.ContactSpec(name=name, **contact), now)
        ids = [await contacts.add_point(connection, ORG, contact_id,
                                        contacts.PointSpec(**point), now) for point in points]
        if confirmed:
            await connection.execute(n.contact_points.update()
                                     .where(n.contact_points.c.id.in_(ids))
                                     .values(confirmed_at=now))
    return ids


async def open_incident(engine: AsyncEngine, name: str = "api", tags: Sequence[str] = (),
                        at: datetime | None = None) -> StateChange:
    """A monitor with an incident just opened, and the state change that opened it."""
    at = at or datetime.now(UTC)
    async with engine.begin() as connection:
        monitor_id = await monitor_store.create_monitor(connection, parse_monitor(
            {"name": name, "kind": "tcp", "host": "127.0.0.1", "port": 9, "tags": list(tags)}))
        incident_id = (await connection.execute(insert(t.incidents).values(
            org_id=ORG, monitor_id=monitor_id, opened_at=at, cause="connection refused",
            first_error=3).returning(t.incidents.c.id))).scalar_one()
    return StateChange(monitor_id, ORG, name, MonitorState.PENDING, MonitorState.DOWN, at,
                       False, incident_id, "connection refused")


def recovery(change: StateChange, at: datetime) -> StateChange:
    return StateChange(change.monitor_id, ORG, change.monitor_name, MonitorState.DOWN,
                       MonitorState.UP, at, False, change.incident_id, None)


async def messages(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(
            select(n.messages).order_by(n.messages.c.id))).all())


async def events(engine: AsyncEngine, message_id: int) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(
            select(n.message_events).where(n.message_events.c.message_id == message_id)
            .order_by(n.message_events.c.id))).all())
