"""Rolling up raw results: each completed hour once, each completed day from its hours.

The writer only stores raw results; this job, run every minute, rolls up every hour that
ended more than ``GRACE`` ago and that is not rolled up yet (``meta.rolled_up_until``),
one hour per transaction, so a crash resumes where it stopped and a repeat changes
nothing (rows are computed, never added to). Deriving rollups from stored results keeps
them exact whichever process wrote the results, and costs one rollup write per monitor
and hour instead of one per check.

Results of the hour that is still open are read raw by the uptime query (at most an
hour and ``GRACE`` of one monitor's rows).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.core.rollups import DAY, HOUR, Rollup, combine
from dozor.core.types import ResultStatus
from dozor.store import tables as t
from dozor.store.queries import ROLLED_UP as MARK
from dozor.store.queries import rolled_up_until, rollup_from_row, rollup_row
from dozor.store.upsert import insert_missing, upsert

GRACE = timedelta(minutes=2)  # results are written within seconds; leave room for that
CHUNK = 100  # monitors per query: a few milliseconds of work between yields
KEYS = ("monitor_id", "location_id", "bucket")


async def roll_up(database: AsyncEngine, now: datetime, unwritten_ms: int | None = None) -> int:
    """Roll up every completed hour not rolled up yet; return how many hours were done.

    ``unwritten_ms`` is the time of the oldest result still waiting to be stored (after a
    database outage the writer may be hours behind): no hour from there on is rolled up.
    """
    end = (int((now - GRACE).timestamp()) // HOUR) * HOUR
    if unwritten_ms is not None:
        end = min(end, (unwritten_ms // 1000 // HOUR) * HOUR)
    start = await _start(database, end)
    done = 0
    for hour in range(start, end, HOUR):
        async with database.begin() as connection:
            await _roll_hour(connection, hour)
            if (hour + HOUR) % DAY == 0:
                await _roll_day(connection, hour + HOUR - DAY)
            await connection.execute(update(t.meta).where(t.meta.c.key == MARK)
                                     .values(value=hour + HOUR))
        done += 1
        await asyncio.sleep(0)  # let checks run between hours when catching up
    return done


async def _start(database: AsyncEngine, end: int) -> int:
    """Where to start: the mark, or the first stored result's hour on a new database."""
    async with database.begin() as connection:
        mark = await rolled_up_until(connection)
        if mark is not None:
            return mark
        first = await connection.scalar(select(func.min(t.results.c.at)))
        start = end if first is None else (int(first) // 1000 // HOUR) * HOUR
        await insert_missing(connection, t.meta, {"key": MARK, "value": start})
        return start


async def _roll_hour(connection: AsyncConnection, hour: int) -> None:
    """Read the hour monitor by monitor (the primary key's order), then write it at once:
    the reads yield to the checks in between, the write holds the database briefly."""
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(await _monitor_ids(connection)):
        found = await connection.execute(
            select(t.results.c.monitor_id, t.results.c.location_id, t.results.c.status,
                   t.results.c.latency_ms)
            .where(t.results.c.monitor_id.in_(chunk), t.results.c.at >= hour * 1000,
                   t.results.c.at < (hour + HOUR) * 1000))
        rows += [rollup_row((m, loc, hour), r) for (m, loc), r in summarise(found).items()]
        await asyncio.sleep(0)
    await upsert(connection, t.rollups_hourly, rows, KEYS)


async def _roll_day(connection: AsyncConnection, day: int) -> None:
    hourly = t.rollups_hourly
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(await _monitor_ids(connection)):
        found = await connection.execute(
            select(hourly).where(hourly.c.monitor_id.in_(chunk), hourly.c.bucket >= day,
                                 hourly.c.bucket < day + DAY))
        parts: dict[tuple[int, int], list[Rollup]] = defaultdict(list)
        for row in found:
            parts[(row.monitor_id, row.location_id)].append(rollup_from_row(row))
        rows += [rollup_row((m, loc, day), combine(p)) for (m, loc), p in parts.items()]
        await asyncio.sleep(0)
    await upsert(connection, t.rollups_daily, rows, KEYS)


async def _monitor_ids(connection: AsyncConnection) -> list[int]:
    return list((await connection.execute(select(t.monitors.c.id).order_by(t.monitors.c.id))
                 ).scalars())


def summarise(rows: Iterable[Any]) -> dict[tuple[int, int], Rollup]:
    """Rollups per (monitor, location) of raw result rows; maintenance is left out."""
    rollups: dict[tuple[int, int], Rollup] = defaultdict(Rollup)
    for monitor_id, location_id, status, latency in rows:
        if status != ResultStatus.MAINTENANCE:
            rollups[(monitor_id, location_id)].add(status == ResultStatus.UP, latency)
    return rollups


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]
