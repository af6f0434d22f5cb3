"""Rolling up raw results: each completed hour once, each completed day from its hours,
and again any hour whose results were stored after it was rolled up.

The writers only store raw results; this job, run every minute, rolls up every hour that
ended more than ``GRACE`` ago and that is not rolled up yet (``meta.rolled_up_until``,
"the mark"), one hour per transaction, so a crash resumes where it stopped and a repeat
changes nothing (rows are computed, never added to). Deriving rollups from stored results
keeps them exact whichever process wrote the results, and costs one rollup write per
monitor and hour instead of one per check. Then it makes again, from raw results, the
hours ``store.late_hours`` lists (results that arrived late, from a probe's buffer say)
and the days holding them, at most ``LATE_BATCH`` per transaction.

Each transaction that writes rollups holds the mark's row (``late_hours.hold``, which the
writers of late results read shared), so two server processes running the job take
turns, and a result is either read by the job or recorded as late. An hour's results are
read before the hold (reading is the long part, and on SQLite the hold stops every
writer); under the hold the job counts them again and reads them again if the count
moved.

Results of the hour that is still open are read raw by the uptime query (at most an
hour and ``GRACE`` of one monitor's rows).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.core.rollups import DAY, HOUR, Rollup, combine
from dozor.core.types import ResultStatus
from dozor.store import late_hours
from dozor.store import tables as t
from dozor.store.db import write_transaction
from dozor.store.queries import ROLLED_UP as MARK
from dozor.store.queries import rolled_up_until, rollup_from_row, rollup_row
from dozor.store.upsert import insert_missing, upsert

log = logging.getLogger(__name__)
GRACE = timedelta(minutes=2)  # results are written within seconds; leave room for that
CHUNK = 100  # monitors per query: a few milliseconds of work between yields
COUNT_CHUNK = 1_000  # monitors per count under the hold: counting is cheap
LATE_BATCH = 500  # late hours per transaction: a few tens of thousands of rows to read
KEYS = ("monitor_id", "location_id", "bucket")
Pair = tuple[int, int]  # (monitor id, location id)


async def roll_up(database: AsyncEngine, now: datetime, unwritten_ms: int | None = None,
                  keep_raw: timedelta | None = None) -> int:
    """Roll up every completed hour not rolled up yet, then make the late hours again;
    return how many hours were rolled up (late ones are not counted).

    ``unwritten_ms`` is the time of the oldest result still waiting to be stored (after a
    database outage the writer may be hours behind): no hour from there on is rolled up.
    ``keep_raw`` is how long raw results are kept (``DOZOR_RETENTION_RAW``): a late hour
    the prune may have reached is not made again (see ``store.late_hours``).
    """
    end = (int((now - GRACE).timestamp()) // HOUR) * HOUR
    if unwritten_ms is not None:
        end = min(end, (unwritten_ms // 1000 // HOUR) * HOUR)
    await _start(database, end)
    done = 0
    while (rolled := await _roll_next(database, end)) is not None:
        done += rolled
        await asyncio.sleep(0)  # let checks run between hours when catching up
    await roll_late(database, now, keep_raw)
    return done


async def _start(database: AsyncEngine, end: int) -> None:
    """Set the mark on a new database: the first stored result's hour, or ``end``."""
    async with database.connect() as connection:
        if await rolled_up_until(connection) is not None:
            return
    async with write_transaction(database) as connection:
        first = await connection.scalar(select(func.min(t.results.c.at)))
        start = end if first is None else (int(first) // 1000 // HOUR) * HOUR
        await insert_missing(connection, t.meta, {"key": MARK, "value": start})


async def _roll_next(database: AsyncEngine, end: int) -> int | None:
    """Roll up the hour at the mark if it ended before ``end``: 1 when this call did, 0
    when another process did meanwhile, None when no hour is left."""
    async with database.connect() as reader:
        hour = await rolled_up_until(reader)
        if hour is None or hour >= end:
            return None
        rollups, seen = await _read_hour(reader, hour, await _monitor_ids(reader))
    async with write_transaction(database) as connection:
        if await late_hours.hold(connection) != hour:
            return 0  # another process rolled it up meanwhile: go on from its mark
        ids = await _monitor_ids(connection)
        if await _count_hour(connection, hour, ids) != seen:  # stored (or deleted) since
            rollups, _ = await _read_hour(connection, hour, ids)
        await upsert(connection, t.rollups_hourly,
                     [rollup_row((m, loc, hour), r) for (m, loc), r in rollups.items()], KEYS)
        if (hour + HOUR) % DAY == 0:
            day = hour + HOUR - DAY
            daily = await _read_day(connection, day, ids)
            await upsert(connection, t.rollups_daily,
                         [rollup_row((m, loc, day), r) for (m, loc), r in daily.items()], KEYS)
        await connection.execute(update(t.meta).where(t.meta.c.key == MARK)
                                 .values(value=hour + HOUR))
    return 1


async def roll_late(database: AsyncEngine, now: datetime,
                    keep_raw: timedelta | None = None) -> int:
    """Make again the hours that results arrived late for, and their days if those are
    rolled up; how many (hour, monitor, location) were made again (see ``roll_up``)."""
    done = 0
    while True:
        async with database.connect() as connection:
            if not await late_hours.any_waiting(connection):
                return done  # the usual case: no write transaction every minute
        async with write_transaction(database) as connection:
            mark = await late_hours.hold(connection)
            due = [] if mark is None else await late_hours.due(connection, mark, LATE_BATCH)
            if mark is None or not due:
                return done  # only hours the job has not reached yet
            done += await _roll_again(connection, due, mark, now, keep_raw)
            await late_hours.clear(connection, due)
        await asyncio.sleep(0)


async def _roll_again(connection: AsyncConnection, due: list[late_hours.Late], mark: int,
                      now: datetime, keep_raw: timedelta | None) -> int:
    hours: dict[int, set[Pair]] = defaultdict(set)
    pruned = []
    for hour, monitor_id, location_id in due:
        if keep_raw is None or late_hours.complete(hour, now, keep_raw):
            hours[hour].add((monitor_id, location_id))
        else:
            pruned.append(hour)
    if pruned:  # the probes' endpoint refuses results this old: a long stalled job
        log.warning("%d late hours (the oldest %s) not rolled up again: their raw results "
                    "may be pruned already", len(pruned),
                    datetime.fromtimestamp(min(pruned), UTC).isoformat())
    days: dict[int, set[Pair]] = defaultdict(set)
    for hour, pairs in hours.items():
        rollups, _ = await _read_hour(connection, hour, {m for m, _ in pairs})
        await _write_pairs(connection, t.rollups_hourly, hour, rollups, pairs)
        if hour // DAY * DAY + DAY <= mark:  # its day is rolled up: make it again too
            days[hour // DAY * DAY] |= pairs
    for day, pairs in days.items():
        daily = await _read_day(connection, day, {m for m, _ in pairs})
        await _write_pairs(connection, t.rollups_daily, day, daily, pairs)
    return sum(len(pairs) for pairs in hours.values())


async def _write_pairs(connection: AsyncConnection, table: Table, bucket: int,
                       rollups: dict[Pair, Rollup], pairs: set[Pair]) -> None:
    """Write the rollups of these (monitor, location) only: others were not late."""
    await upsert(connection, table, [rollup_row((m, loc, bucket), rollups[(m, loc)])
                                     for m, loc in sorted(pairs) if (m, loc) in rollups], KEYS)


async def _read_hour(connection: AsyncConnection, hour: int, ids: Collection[int]
                     ) -> tuple[dict[Pair, Rollup], int]:
    """The hour's rollups of these monitors from raw results, and how many rows were read.
    Monitor by monitor (the primary key's order), yielding to the checks in between."""
    rollups: dict[Pair, Rollup] = {}
    seen = 0
    for chunk in _chunks(sorted(ids), CHUNK):
        found = (await connection.execute(
            select(t.results.c.monitor_id, t.results.c.location_id, t.results.c.status,
                   t.results.c.latency_ms)
            .where(t.results.c.monitor_id.in_(chunk), t.results.c.at >= hour * 1000,
                   t.results.c.at < (hour + HOUR) * 1000))).all()
        seen += len(found)
        rollups |= summarise(found)
        await asyncio.sleep(0)
    return rollups, seen


async def _count_hour(connection: AsyncConnection, hour: int, ids: list[int]) -> int:
    total = 0
    for chunk in _chunks(ids, COUNT_CHUNK):
        total += int(await connection.scalar(
            select(func.count()).select_from(t.results)
            .where(t.results.c.monitor_id.in_(chunk), t.results.c.at >= hour * 1000,
                   t.results.c.at < (hour + HOUR) * 1000)) or 0)
    return total


async def _read_day(connection: AsyncConnection, day: int, ids: Collection[int]
                    ) -> dict[Pair, Rollup]:
    """The day's rollups of these monitors, from its hours."""
    hourly = t.rollups_hourly
    rollups: dict[Pair, Rollup] = {}
    for chunk in _chunks(sorted(ids), CHUNK):
        found = await connection.execute(
            select(hourly).where(hourly.c.monitor_id.in_(chunk), hourly.c.bucket >= day,
                                 hourly.c.bucket < day + DAY))
        parts: dict[Pair, list[Rollup]] = defaultdict(list)
        for row in found:
            parts[(row.monitor_id, row.location_id)].append(rollup_from_row(row))
        rollups |= {pair: combine(p) for pair, p in parts.items()}
        await asyncio.sleep(0)
    return rollups


async def _monitor_ids(connection: AsyncConnection) -> list[int]:
    return list((await connection.execute(select(t.monitors.c.id).order_by(t.monitors.c.id))
                 ).scalars())


def summarise(rows: Iterable[Any]) -> dict[Pair, Rollup]:
    """Rollups per (monitor, location) of raw result rows; maintenance is left out."""
    rollups: dict[Pair, Rollup] = defaultdict(Rollup)
    for monitor_id, location_id, status, latency in rows:
        if status != ResultStatus.MAINTENANCE:
            rollups[(monitor_id, location_id)].add(status == ResultStatus.UP, latency)
    return rollups


def _chunks(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]
