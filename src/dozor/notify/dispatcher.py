"""The dispatcher: claims due messages, asks the guard, sends, and records what happened.

Sends run concurrently (bounded); their results are written by one flusher in batches, so
a burst of a thousand messages is a few transactions, not a thousand. A crash after a
send and before its record is written re-sends under the same idempotency key when the
claim's lease runs out (at-least-once; providers that take a key drop the duplicate).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.notify import account_mail, outbox, settle, subscriber_mail
from dozor.notify.channelset import ChannelSet
from dozor.notify.delivery import Deferred, Outcome, Refused, RetryPolicy, compose, deliver
from dozor.notify.guard import INSTALLATION, Allow, Defer, Guard, OrgView, PointView, Refuse
from dozor.notify.outbox import Claimed
from dozor.store import notify_tables as n
from dozor.store import status_subscribers
from dozor.store import tables as t
from dozor.store.db import write_transaction

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DispatcherOptions:
    batch: int = 500
    concurrency: int = 200
    lease: timedelta = timedelta(minutes=2)
    poll: float = 0.5  # seconds between looks at the queue when nobody wakes us
    # Under a steady trickle, claiming and recording every few messages costs a
    # transaction each; waiting this long between small claims and between flushes
    # batches them (at most this much latency added).
    claim_every: float = 0.01
    flush_every: float = 0.02
    public_url: str = ""
    retry: RetryPolicy = RetryPolicy()


class Dispatcher:
    """Run with :meth:`run` (until cancelled) or step with :meth:`run_once` in tests."""

    def __init__(self, database: AsyncEngine, channels: ChannelSet, guard: Guard | None = None,
                 options: DispatcherOptions | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.database = database
        self.channels = channels
        self.guard = guard or Guard()
        self.options = options or DispatcherOptions()
        self.clock = clock
        self._wake = asyncio.Event()
        self._settled: list[Outcome] = []
        self._flushed = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """Look at the queue now (called after something was queued in this process)."""
        self._wake.set()

    async def run(self) -> None:
        flusher = asyncio.create_task(self._flush_forever())
        try:
            while True:
                if self._free_slots() == 0:  # every slot busy: go on when one frees
                    self._slot_freed.clear()
                    await self._slot_freed.wait()
                    continue
                # Cleared before looking, so a wake-up during the claim is not lost.
                self._wake.clear()
                claimed = await self.run_once(wait=False)
                if not claimed:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.options.poll):
                            await self._wake.wait()
                elif claimed < self.options.batch:
                    await asyncio.sleep(self.options.claim_every)
        finally:
            await self._drain()
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await self.flush()

    async def run_once(self, wait: bool = True) -> int:
        """Claim one batch and start sending it; with ``wait``, finish and record it."""
        free = self._free_slots()
        if free == 0:
            return 0
        now = self.clock()
        async with write_transaction(self.database) as connection:
            claimed = await outbox.claim(connection, now, self.options.lease,
                                         min(free, self.options.batch))
            if not claimed:
                return 0
            context = await _context(connection, claimed, now)
        for group in _groups(claimed):
            self._start(self._handle(group, context, now))
        if wait:
            await self._drain()
            await self.flush()
        return len(claimed)

    def _free_slots(self) -> int:
        return max(0, self.options.concurrency - len(self._tasks))

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("sending failed unexpectedly", exc_info=task.exception())

    async def _drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _handle(self, group: list[Claimed], context: _Context, now: datetime) -> None:
        point = context.point(group[0])
        org = context.org(group[0])
        event = next((m.event for m in group if m.event not in ("point_failing", "suspended")),
                     group[0].event)
        verdict = self.guard.judge(event, point, org,
                                   context.recent.get(point.id, 0) if point else 0, now)
        if isinstance(verdict, Refuse):
            self._settled.append(Refused(group, point, verdict.reason))
        elif isinstance(verdict, Defer):
            self._settled.append(Deferred(group, verdict.until, verdict.reason))
        else:
            assert isinstance(verdict, Allow) and point is not None
            message = compose(group, point, self.options.public_url)
            channels = self.channels.for_point(point.kind)
            # Await first: ``self._settled`` may be swapped by a flush meanwhile.
            outcome = await deliver(group, point, channels, message, self.options.retry, now)
            self._settled.append(outcome)
        self._flushed.set()

    async def _flush_forever(self) -> None:
        while True:
            await self._flushed.wait()
            self._flushed.clear()
            try:
                await self.flush()
            except Exception:  # the rows stay claimed; their lease brings them back
                log.exception("could not record deliveries")
                await asyncio.sleep(1)
            await asyncio.sleep(self.options.flush_every)

    async def flush(self) -> None:
        """Write every result gathered so far, in one transaction."""
        if not self._settled:
            return
        batch, self._settled = self._settled, []
        try:
            async with write_transaction(self.database) as connection:
                await settle.record(connection, batch, self.clock())
        except Exception:
            self._settled[:0] = batch  # try again with the next flush; nothing is dropped
            raise


def _groups(claimed: Sequence[Claimed]) -> list[list[Claimed]]:
    """One group per point: what is due for one recipient at once goes as one digest."""
    by_point: dict[int | None, list[Claimed]] = defaultdict(list)
    singles: list[list[Claimed]] = []
    for message in claimed:
        if message.point_id is None:
            singles.append([message])
        else:
            by_point[message.point_id].append(message)
    return [*by_point.values(), *singles]


@dataclass(frozen=True, slots=True)
class _Context:
    """What the guard needs about a claim's recipients and accounts."""

    points: dict[int, PointView]
    orgs: dict[int, OrgView]
    recent: dict[int, int]  # messages accepted per point in the last hour
    opted_out: dict[str, datetime]  # account emails' addresses that opted out
    subscribers: dict[int, Any]  # status page subscribers, by id

    def org(self, message: Claimed) -> OrgView:
        return INSTALLATION if message.org_id is None else self.orgs[message.org_id]

    def point(self, message: Claimed) -> PointView | None:
        if message.subscriber_id is not None:
            return subscriber_mail.recipient(message, self.subscribers.get(
                message.subscriber_id), self.opted_out.get(message.to_address or ""))
        if message.to_address is not None:
            return account_mail.recipient(message, self.opted_out.get(message.to_address))
        return self.points.get(message.point_id or 0)


async def _context(connection: AsyncConnection, claimed: Sequence[Claimed],
                   now: datetime) -> _Context:
    point_ids = {m.point_id for m in claimed if m.point_id is not None}
    org_ids = {m.org_id for m in claimed if m.org_id is not None}
    p, o = n.contact_points.c, t.organizations.c
    rows = (await connection.execute(select(
        p.id, p.org_id, p.contact_id, p.kind, p.address, p.secret, p.confirmed_at,
        p.opted_out_at, p.unsubscribe_token).where(p.id.in_(point_ids)))).all()
    points = {row.id: PointView(*row) for row in rows}
    orgs = {row.id: OrgView(row.id, row.name, row.sms_credits, row.messaging_suspended_reason,
                            row.restricted_at is not None)
            for row in (await connection.execute(select(
                o.id, o.name, o.sms_credits, o.messaging_suspended_reason, o.restricted_at)
                .where(o.id.in_(org_ids)))).all()}
    recent = await outbox.recent_counts(connection, point_ids, now - timedelta(hours=1))
    opted_out = await account_mail.opted_out(
        connection, {m.to_address for m in claimed if m.to_address is not None})
    subscribers = await status_subscribers.by_ids(
        connection, {m.subscriber_id for m in claimed if m.subscriber_id is not None})
    return _Context(points, orgs, recent, opted_out, subscribers)
