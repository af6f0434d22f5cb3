"""Hours to roll up again: results stored after their hour was rolled up.

The rollup job (``engine.rollup_job``) rolls each ended hour up once, behind the mark
``meta.rolled_up_until``. A result stored later for an hour behind the mark (a probe
delivering its buffer after an outage, or another server node writing its queue after a
database outage) would never reach the rollups. So whoever stores results calls
:func:`mark` in the same transaction: each stored result of an hour behind the mark puts
(hour, monitor, location) in ``late_hours``, and the job makes those hours again from
raw results and deletes the rows in one transaction. The row is durable from the moment
the result is: a crash in between leaves it for the next run.

**Why nothing slips between the two.** Every transaction of the job that writes rollups
first takes the mark's row (:func:`hold`, an ``UPDATE``: a row lock on PostgreSQL, the
write lock on SQLite), and :func:`mark` reads the mark shared (``FOR SHARE``) after the
results were inserted. So a result either commits before the job's hold (the job reads
it) or reads the mark the job left (and is recorded as late). Results of the hour still
open skip the read: the job rolls an hour up only ``GRACE`` after it ended, which assumes
server nodes' clocks agree within that.

**Retention.** An hour made again from raw results must have all of them: once the prune
(``store.retention``) has taken part of an hour, making it again would replace a full
rollup with a partial one. So the probes' endpoint refuses results older than
:func:`oldest_accepted_ms` (counted as skipped), which leaves the job :data:`REROLL_TIME`
to make their hour again before any prune can reach it; and the job never makes an hour
again that :func:`complete` does not vouch for (it drops the row and logs it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.core.rollups import HOUR
from dozor.store import tables as t
from dozor.store.queries import ROLLED_UP

HOUR_MS = HOUR * 1000
# How long the job has to make a late hour again before a prune may take part of it
# (the job runs every minute, and the prune rolls up first).
REROLL_TIME = timedelta(hours=1)
# A prune that started on a node whose clock is ahead, or while the job read the hour.
PRUNE_MARGIN = timedelta(minutes=5)

Late = tuple[int, int, int]
"""(hour's first second, monitor id, location id)"""


async def mark(connection: AsyncConnection, stored: Iterable[Sequence[int]],
               now: datetime) -> int:
    """Record the hours behind the rollup mark of results just stored in this
    transaction; how many (hour, monitor, location) were recorded.

    ``stored`` holds each stored row's key (monitor id, time in ms, location id). Call it
    after inserting them: on SQLite the insert took the write lock, so the mark read here
    is the one the rollup job left. For example ``await mark(conn, [(7, at_ms, 1)],
    now)`` is 1 when the hour of ``at_ms`` is rolled up already, else 0.
    """
    open_from = int(now.timestamp()) // HOUR * HOUR_MS
    ended = {(at // HOUR_MS * HOUR, monitor, location)
             for monitor, at, location in stored if at < open_from}
    if not ended:
        return 0
    rolled_to = await connection.scalar(
        select(t.meta.c.value).where(t.meta.c.key == ROLLED_UP).with_for_update(read=True))
    # No mark yet (a new database, the job's first run in progress): which hours the job
    # starts from is not known, so every ended hour is recorded; ones not rolled up yet
    # wait until they are.
    late = sorted(k for k in ended if rolled_to is None or k[0] < rolled_to)
    if late:  # in key order: two writers lock the rows they share in the same order
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        await connection.execute(
            dialect.insert(t.late_hours).on_conflict_do_nothing(),
            [{"bucket": b, "monitor_id": m, "location_id": loc} for b, m, loc in late])
    return len(late)


async def hold(connection: AsyncConnection) -> int | None:
    """Take the rollup mark's row until the transaction ends; the mark (None before the
    job's first run). Every transaction of the job that writes rollups starts here."""
    m = t.meta.c
    value = await connection.scalar(update(t.meta).where(m.key == ROLLED_UP)
                                    .values(value=m.value).returning(m.value))
    return None if value is None else int(value)


async def any_waiting(connection: AsyncConnection) -> bool:
    """Whether some hour waits to be made again (read without holding anything)."""
    return bool(await connection.scalar(select(exists().select_from(t.late_hours))))


async def due(connection: AsyncConnection, before: int, limit: int) -> list[Late]:
    """The oldest ``limit`` hours to make again among those before ``before`` (the mark)."""
    c = t.late_hours.c
    rows = await connection.execute(
        select(c.bucket, c.monitor_id, c.location_id).where(c.bucket < before)
        .order_by(c.bucket, c.monitor_id, c.location_id).limit(limit))
    return [(int(b), int(m), int(loc)) for b, m, loc in rows]


async def clear(connection: AsyncConnection, rows: Sequence[Late]) -> None:
    """Delete these rows: their hours are made again in this transaction."""
    c = t.late_hours.c
    if rows:
        await connection.execute(delete(t.late_hours).where(
            tuple_(c.bucket, c.monitor_id, c.location_id).in_(list(rows))))


def oldest_accepted_ms(now: datetime, keep_raw: timedelta) -> int:
    """The oldest result time whose hour can still be made again before the prune,
    which keeps raw results for ``keep_raw``, reaches it (see the module's text).

    >>> from datetime import UTC
    >>> day = datetime(2026, 12, 15, 10, 20, tzinfo=UTC)
    >>> datetime.fromtimestamp(oldest_accepted_ms(day, timedelta(days=14)) / 1000, UTC)
    datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
    """
    first_ms = int((now - keep_raw + REROLL_TIME).timestamp() * 1000)
    return -(-first_ms // HOUR_MS) * HOUR_MS  # the next hour's start: whole hours only


def complete(hour: int, now: datetime, keep_raw: timedelta) -> bool:
    """Whether every raw result of ``hour`` (its first second) is surely still stored."""
    return hour >= (now - keep_raw + PRUNE_MARGIN).timestamp()
