"""The channels this installation sends through: one instance per ``notify_channels`` row,
plus a built-in instance of each kind that needs no configuration (webhooks, Slack,
Discord, Teams, Apprise: their point's address is all they need)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.notify.channels.base import (
    CallbackReply,
    CallbackRequest,
    Channel,
    ChannelContext,
    EventSink,
    build_channel,
    channel_class,
    channel_kinds,
)
from dozor.outbound import Outbound
from dozor.store import notify_tables as n

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ChannelEntry:
    id: int | None  # None: a built-in instance with no row
    name: str
    kind: str
    point_kind: str
    priority: int
    channel: Channel
    callback_token: str | None = None


class ChannelSet:
    """Channels by the kind of point they reach, in the order to try them."""

    def __init__(self, entries: Sequence[ChannelEntry]) -> None:
        self.entries = sorted(entries, key=lambda e: (e.priority, e.id or 0))
        self._by_id = {e.id: e for e in self.entries if e.id is not None}

    def for_point(self, point_kind: str) -> list[ChannelEntry]:
        return [e for e in self.entries if e.point_kind == point_kind]

    def get(self, channel_id: int) -> ChannelEntry | None:
        return self._by_id.get(channel_id)

    async def start(self) -> None:
        for entry in self.entries:
            start = getattr(entry.channel, "start", None)
            if start is not None:
                try:
                    await start()
                except Exception:  # a channel that cannot start must not stop the others
                    log.exception("channel %s could not start", entry.name)

    async def close(self) -> None:
        for entry in self.entries:
            close = getattr(entry.channel, "close", None)
            if close is not None:
                await close()

    async def handle_callback(self, channel_id: int, token: str,
                              request: CallbackRequest) -> CallbackReply | None:
        """Pass a provider's call to its channel; None if no such channel or wrong token."""
        entry = self._by_id.get(channel_id)
        handler = getattr(entry.channel, "handle_callback", None) if entry else None
        if entry is None or handler is None or entry.callback_token != token:
            return None
        reply: CallbackReply = await handler(request)
        return reply


async def load_channels(database: AsyncEngine, outbound: Outbound, sink: EventSink,
                        public_url: str, send_timeout: float = 15.0) -> ChannelSet:
    """Build every enabled channel from the database, and the built-in ones."""
    async with database.connect() as connection:
        rows = (await connection.execute(
            select(n.notify_channels).where(n.notify_channels.c.enabled))).mappings().all()
    entries = [entry for row in rows
               if (entry := _configured(dict(row), outbound, sink, public_url, send_timeout))]
    configured_kinds = {e.kind for e in entries}
    context = ChannelContext(outbound=outbound, sink=sink, timeout=send_timeout)
    for kind in channel_kinds():
        if kind not in configured_kinds and (builtin := _builtin(kind, context)):
            entries.append(builtin)
    return ChannelSet(entries)


def _configured(row: dict[str, Any], outbound: Outbound, sink: EventSink, public_url: str,
                timeout: float) -> ChannelEntry | None:
    callback = (f"{public_url.rstrip('/')}/hooks/{row['id']}/{row['callback_token']}"
                if public_url else None)
    context = ChannelContext(outbound=outbound, sink=sink, callback_url=callback,
                             timeout=timeout)
    try:
        channel = build_channel(row["kind"], row["config"], context)
    except (KeyError, ValidationError) as error:
        log.error("channel %s is not usable: %s", row["name"], error)
        return None
    return ChannelEntry(row["id"], row["name"], row["kind"], channel_class(row["kind"]).point_kind,
                        row["priority"], channel, row["callback_token"])


def _builtin(kind: str, context: ChannelContext) -> ChannelEntry | None:
    try:
        channel = build_channel(kind, {}, context)
    except ValidationError:
        return None  # needs configuration (credentials): only configured instances exist
    return ChannelEntry(None, kind, kind, channel_class(kind).point_kind, 1000, channel)
