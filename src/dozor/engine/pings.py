"""Heartbeat pings: recorded in memory at once, stored by group commit.

What a ping must leave behind is small: per monitor, the time of the last ping, of the
last ``start``, and the last ping's kind (``monitor_state.last_ping_*``). Each ping
overwrites the previous values; nothing else about it is kept (the heartbeat check's
results, written by the result writer, are the history).

When it must be stored: before the pinging job is told "OK". A job that got its OK has no
reason to ping again; if the server then crashed before storing it, the restarted engine
would read the older ping, and a daily backup that did run would be reported missing a
few minutes later. So an answered ping is a stored ping. A ping that is not stored in
time gets an error (503), and the job's retry (``curl --retry``) sends it again.

How it stays cheap: a ping updates the engine's memory (what the check reads), adds its
monitor to the pending set and waits for the next commit. One commit at a time, started
``COMMIT_DELAY`` after the first ping that needs it, writes every pending monitor's
*current* values in one statement; pings that arrive while it runs wait for the next one.
Under load a commit carries many pings (and a monitor pinged a hundred times carries one
row), so the work per ping is a set insert and a share of one commit, whatever the rate:
constant, with no database round trip of its own. A lone ping costs one small
transaction, when there is time for it. An in-memory write-behind (OK first, store
within a second) would be cheaper still, and would lose exactly the pings just answered.

Several server nodes (PostgreSQL, ``engine.cluster``): a ping reaches whichever node the
job's request reached, and only one node checks the monitor. So every node stores what it
heard without ever moving a time backwards (GREATEST), and the checking node folds the
stored times into its memory before each heartbeat check (``refresh``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.checks.base import HeartbeatSignals
from dozor.store import tables as t
from dozor.store.db import write_transaction

log = logging.getLogger(__name__)
KINDS = ("success", "fail", "start")
COMMIT_TIMEOUT = 10.0  # seconds a ping waits for its commit before the job hears 503
# A commit waits this long for more pings to join it (as PostgreSQL's commit_delay): a
# transaction costs far more CPU than a row, and a job does not mind 5 ms more.
COMMIT_DELAY = 0.005


class PingNotStored(Exception):
    """The database did not store the ping in time; the job should retry."""


class PingRecorder:
    def __init__(self, database: AsyncEngine, signals: dict[int, HeartbeatSignals]) -> None:
        self.database = database
        self.signals = signals  # the engine's: the heartbeat check reads them
        self._pending: set[int] = set()
        self._next: asyncio.Future[None] | None = None  # the commit new pings join
        self._committing: asyncio.Task[None] | None = None
        self.commits = 0

    async def record(self, monitor_id: int, kind: str, now: datetime) -> None:
        """Note the ping in memory, then return once it is stored (or raise PingNotStored)."""
        signals = self.signals.get(monitor_id)
        if signals is None:
            signals = self.signals[monitor_id] = HeartbeatSignals()
        if kind == "start":
            signals.last_start_at = now
        else:
            signals.last_ping_at = now
        signals.last_ping_kind = kind
        self._pending.add(monitor_id)
        stored = self._join()
        # asyncio.wait neither cancels the commit when it times out nor when the job hangs
        # up (this request is cancelled): others wait for the same commit.
        done, _ = await asyncio.wait((stored,), timeout=COMMIT_TIMEOUT)
        if not done:
            raise PingNotStored(f"not stored within {COMMIT_TIMEOUT:g} s")
        error = stored.exception()
        if error is not None:
            raise PingNotStored(str(error) or type(error).__name__) from error

    def _join(self) -> asyncio.Future[None]:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if self._committing is None:
                self._committing = asyncio.ensure_future(self._commit_while_pending())
        return self._next

    async def _commit_while_pending(self) -> None:
        try:
            while self._next is not None:
                await asyncio.sleep(COMMIT_DELAY)  # let the pings arriving now join
                batch, self._next = self._next, None
                ids, self._pending = self._pending, set()
                try:
                    await self._write(ids)
                except Exception as error:
                    log.warning("storing %d heartbeat pings failed: %s", len(ids), error)
                    self._pending |= ids  # memory has them: the next commit tries again
                    batch.set_exception(error)
                    batch.exception()  # every waiter may have gone: no "never retrieved"
                else:
                    batch.set_result(None)
        finally:
            self._committing = None

    async def _write(self, ids: set[int]) -> None:
        rows = [_row(monitor_id, self.signals[monitor_id]) for monitor_id in ids
                if monitor_id in self.signals]  # a monitor removed meanwhile has none
        if not rows:
            return
        async with write_transaction(self.database) as connection:
            await connection.execute(_statement(connection.dialect.name), rows)
        self.commits += 1

    async def refresh(self, monitor_id: int) -> None:
        """Fold into memory the pings other server nodes stored for this monitor."""
        state = t.monitor_state
        async with self.database.connect() as connection:
            row = (await connection.execute(
                select(state.c.last_ping_at, state.c.last_start_at, state.c.last_ping_kind)
                .where(state.c.monitor_id == monitor_id))).first()
        if row is None:
            return
        signals = self.signals.setdefault(monitor_id, HeartbeatSignals())
        if _newest(row.last_ping_at, row.last_start_at) > _newest(signals.last_ping_at,
                                                                  signals.last_start_at):
            signals.last_ping_kind = row.last_ping_kind
        signals.last_ping_at = _later(signals.last_ping_at, row.last_ping_at)
        signals.last_start_at = _later(signals.last_start_at, row.last_start_at)

    async def close(self) -> None:
        """Store what is pending (at stop): wait for the commit under way, then one more."""
        if self._committing is not None:
            await asyncio.gather(self._committing, return_exceptions=True)
        if self._pending:
            ids, self._pending = self._pending, set()
            await self._write(ids)


@functools.lru_cache(maxsize=2)
def _statement(dialect: str) -> Any:
    state = t.monitor_state
    ping_at = bindparam("at", type_=state.c.last_ping_at.type)
    start_at = bindparam("start", type_=state.c.last_start_at.type)
    where = update(state).where(state.c.monitor_id == bindparam("m_id"))
    if dialect != "postgresql":  # one node: its memory is the newest there is
        return where.values(last_ping_at=ping_at, last_start_at=start_at,
                            last_ping_kind=bindparam("kind"))
    # Several nodes may store pings of one monitor: a time only moves forward, and the
    # kind is the newest ping's. (PostgreSQL's GREATEST skips NULLs; SET reads the old row.)
    stored = func.greatest(state.c.last_ping_at, state.c.last_start_at)
    return where.values(
        last_ping_at=func.greatest(state.c.last_ping_at, ping_at),
        last_start_at=func.greatest(state.c.last_start_at, start_at),
        last_ping_kind=case((or_(stored.is_(None), func.greatest(ping_at, start_at) >= stored),
                             bindparam("kind")), else_=state.c.last_ping_kind))


def _newest(*times: datetime | None) -> datetime:
    return max((at for at in times if at is not None), default=datetime.min.replace(tzinfo=UTC))


def _later(mine: datetime | None, stored: datetime | None) -> datetime | None:
    return stored if mine is None or (stored is not None and stored > mine) else mine


def _row(monitor_id: int, signals: HeartbeatSignals) -> dict[str, Any]:
    return {"m_id": monitor_id, "at": signals.last_ping_at, "start": signals.last_start_at,
            "kind": signals.last_ping_kind}
