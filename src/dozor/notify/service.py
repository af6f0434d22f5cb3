"""Alert delivery inside a running server: the router hooked to the result writer, the
channels, a dispatcher task, and the jobs that review bulk patterns and tell the
operator of silent probes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.engine.engine import Engine
from dozor.notify import bulk, inbound
from dozor.notify import channels as _channels  # noqa: F401  (registers every channel kind)
from dozor.notify.channels.base import CallbackReply, CallbackRequest, ChannelEvent
from dozor.notify.channelset import ChannelSet, load_channels
from dozor.notify.delivery import RetryPolicy
from dozor.notify.dispatcher import Dispatcher, DispatcherOptions
from dozor.notify.guard import Guard, GuardLimits
from dozor.notify.probe_watch import ProbeWatch
from dozor.notify.router import Router
from dozor.outbound import AddressPolicy, Outbound
from dozor.settings import Settings
from dozor.store.db import write_transaction

log = logging.getLogger(__name__)
REVIEW_EVERY = 300.0  # seconds


class NotifyService:
    def __init__(self, settings: Settings, database: AsyncEngine) -> None:
        self.settings = settings
        self.database = database
        # Its own, so stopping the checks does not close what the last alerts go out on.
        self.outbound = Outbound(settings.user_agent,
                                 policy=AddressPolicy(settings.allows_private_targets))
        self.router = Router(group_wait=settings.notify_group_wait)
        self.channels = ChannelSet([])
        self.dispatcher: Dispatcher | None = None
        self.probe_watch = ProbeWatch(database, settings.operator_email,
                                      settings.operator_language, settings.probe_silent_after,
                                      wake=self.wake)
        self._task: asyncio.Task[None] | None = None
        self._review: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None

    def attach(self, engine: Engine) -> None:
        """Route the engine's state changes, and wake the dispatcher when they commit."""
        engine.listeners.append(self.router)
        engine.after_commit.append(self.wake)

    def wake(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()

    async def start(self) -> None:
        s = self.settings
        self.channels = await load_channels(self.database, self.outbound, self.apply_events,
                                            s.public_url, s.notify_send_timeout.total_seconds())
        await self.channels.start()
        self.dispatcher = Dispatcher(
            self.database, self.channels,
            Guard(GuardLimits(recipient_per_hour=s.notify_recipient_per_hour)),
            DispatcherOptions(concurrency=s.notify_concurrency, public_url=s.public_url,
                              retry=RetryPolicy(base=s.notify_retry_base,
                                              max_attempts=s.notify_max_attempts)))
        self._task = asyncio.create_task(self.dispatcher.run())
        self._review = asyncio.create_task(self._review_forever())
        self._watch = asyncio.create_task(self.probe_watch.run_forever())

    async def stop(self) -> None:
        for task in (self._watch, self._review, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.channels.close()
        await self.outbound.close()

    async def _review_forever(self) -> None:
        """Every few minutes, look at what accounts send for bulk patterns."""
        while True:
            await asyncio.sleep(REVIEW_EVERY)
            try:
                async with write_transaction(self.database) as connection:
                    for reason in await bulk.review_active(connection, datetime.now(UTC)):
                        log.warning("messaging suspended: %s", reason)
            except Exception:  # the next review tries again; delivery goes on meanwhile
                log.exception("bulk review failed")

    async def apply_events(self, events: Sequence[ChannelEvent]) -> None:
        await inbound.apply_events(self.database, events, datetime.now(UTC))

    async def callback(self, channel_id: int, token: str,
                       request: CallbackRequest) -> CallbackReply | None:
        reply = await self.channels.handle_callback(channel_id, token, request)
        if reply is not None:
            await self.apply_events(reply.events)
        return reply
