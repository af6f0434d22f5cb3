"""Telling the operator when a remote probe goes silent, and when it is back.

Every running server looks once a minute (``NotifyService`` runs it). A live probe not
heard from for ``DOZOR_PROBE_SILENT_AFTER`` (one never heard from: that long after it was
added) is marked silent in ``probes.silent_since``, and the operator's notice is queued
in the same transaction; a probe marked silent and heard from since is unmarked, with a
"back" notice. Both marks are compare-and-swaps (``store.probes``), so a notice goes once
per silence, across restarts and with several servers looking at once; the outbox's
idempotency keys would drop a repeat anyway. Any request of the probe counts as
contact: an idle probe polls its assignment every ``DOZOR_PROBE_SYNC_INTERVAL``.

A server that was down heard nobody meanwhile: after it starts, it calls no probe silent
until it has listened for ``DOZOR_PROBE_SILENT_AFTER`` itself.

Without ``DOZOR_OPERATOR_EMAIL`` the silence is still recorded (``dozor probes list``
shows it) and logged once.

    >>> async def example(database: AsyncEngine) -> None:
    ...     watch = ProbeWatch(database, ("ops@example.com",), "en", timedelta(minutes=5))
    ...     seen = await watch.run_once()  # seen.silent, seen.back: the probes' names
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.core.durations import format_duration
from dozor.notify import operator_mail
from dozor.notify.templates import NEVER_HEARD, language_of
from dozor.store import probes as store
from dozor.store.db import write_transaction

log = logging.getLogger(__name__)
EVERY = timedelta(minutes=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Seen:
    """What one look found: the probes it marked silent, and those back."""

    silent: list[str] = field(default_factory=list)
    back: list[str] = field(default_factory=list)


class ProbeWatch:
    def __init__(self, database: AsyncEngine, addresses: Sequence[str], language: str,
                 after: timedelta, wake: Callable[[], None] = lambda: None,
                 listening_since: datetime | None = None) -> None:
        self.database = database
        self.addresses = tuple(addresses)
        self.language = language_of(language)
        self.after = after
        self.wake = wake  # the dispatcher's, so a notice goes at once
        # No probe can reach a server that is down: after a restart, a probe is judged
        # only once this server has listened for ``after`` (another server may sooner).
        self.listening_since = listening_since or datetime.now(UTC)

    async def run_once(self, now: datetime | None = None) -> Seen:
        now = now or datetime.now(UTC)
        cutoff = now - self.after
        if cutoff < self.listening_since:
            cutoff = EPOCH  # marks nothing, and still takes the lock (below)
        async with write_transaction(self.database) as connection:
            # The write first: on SQLite it takes the database's write lock, so what is
            # read next is not overtaken by another process doing the same.
            silent = await store.mark_silent(connection, cutoff)
            for probe in silent:
                await self._queue_silent(connection, probe, now)
            back = [probe for probe in await store.heard_again(connection)
                    if await store.clear_silence(connection, probe.id)]
            for probe in back:
                await self._queue_back(connection, probe, now)
        self._tell_log(silent, back)  # after the commit: once per silence
        if (silent or back) and self.addresses:
            self.wake()
        return Seen([p.name for p in silent], [p.name for p in back])

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # the next look tries again
                log.exception("looking for silent probes failed")
            await asyncio.sleep(EVERY.total_seconds())

    async def _queue_silent(self, connection: AsyncConnection, probe: Any,
                            now: datetime) -> None:
        last = (_stamp(probe.last_seen_at) if probe.last_seen_at is not None
                else NEVER_HEARD[self.language].format(added=_stamp(probe.created_at)))
        await operator_mail.send(
            connection, self.addresses, "probe_silent", _key("probe_silent", probe),
            self.language, now, probe=probe.name, location=probe.location, last=last,
            after=format_duration(self.after))

    async def _queue_back(self, connection: AsyncConnection, probe: Any,
                          now: datetime) -> None:
        await operator_mail.send(
            connection, self.addresses, "probe_back", _key("probe_back", probe),
            self.language, now, probe=probe.name, location=probe.location,
            at=_stamp(probe.last_seen_at), since=_stamp(probe.silent_since))

    def _tell_log(self, silent: Sequence[Any], back: Sequence[Any]) -> None:
        unmailed = "" if self.addresses else " (set DOZOR_OPERATOR_EMAIL to be mailed)"
        for probe in silent:
            log.warning("probe %s at %s is silent: not heard from since %s%s", probe.name,
                        probe.location, _stamp(probe.silent_since), unmailed)
        for probe in back:
            log.info("probe %s at %s is back (silent since %s)", probe.name, probe.location,
                     _stamp(probe.silent_since))


def _key(event: str, probe: Any) -> str:
    """One silence of one probe: the same whoever queues it."""
    return f"{event}:{probe.id}:{int(probe.silent_since.timestamp() * 1000)}"


def _stamp(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
