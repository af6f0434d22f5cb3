"""Rollups made from raw results: each hour once, each day from its hours; exact,
repeatable, resumable; and uptime reads the open hour raw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.core.types import ResultStatus
from dozor.engine.rollup_job import roll_up
from dozor.store import queries
from dozor.store import tables as t
from tests.engine.conftest import add_monitor

DAY0 = datetime(2026, 4, 1, tzinfo=UTC)


async def store_results(engine: AsyncEngine, monitor_id: int, hours: int, first: int = 0
                        ) -> None:
    """Every minute for `hours` hours from hour `first` of DAY0: down in minute 0 of each
    hour, maintenance in minute 1."""
    rows = []
    for minute in range(first * 60, (first + hours) * 60):
        status = (ResultStatus.DOWN if minute % 60 == 0 else
                  ResultStatus.MAINTENANCE if minute % 60 == 1 else ResultStatus.UP)
        at = int((DAY0 + timedelta(minutes=minute)).timestamp() * 1000)
        rows.append({"monitor_id": monitor_id, "at": at, "location_id": 1,
                     "status": int(status), "latency_ms": 10 + minute % 60})
    async with engine.begin() as connection:
        await connection.execute(insert(t.results), rows)


async def table(engine: AsyncEngine, which: t.Table) -> list[tuple[int, int, int]]:
    async with engine.connect() as connection:
        found = await connection.execute(select(which.c.bucket, which.c.checks, which.c.up)
                                         .order_by(which.c.bucket))
        return [tuple(row) for row in found]


async def test_each_ended_hour_and_day_is_rolled_up_exactly(engine: AsyncEngine) -> None:
    monitor_id = await add_monitor(engine, name="m")
    await store_results(engine, monitor_id, 26)
    start = int(DAY0.timestamp())
    done = await roll_up(engine, DAY0 + timedelta(hours=25, minutes=30))
    assert done == 25  # hour 25 has not ended yet
    hourly = await table(engine, t.rollups_hourly)
    assert hourly[0] == (start, 59, 58)  # maintenance left out, one failure
    assert len(hourly) == 25
    assert await table(engine, t.rollups_daily) == [(start, 24 * 59, 24 * 58)]

    assert await roll_up(engine, DAY0 + timedelta(hours=25, minutes=30)) == 0  # nothing new
    assert await table(engine, t.rollups_hourly) == hourly


async def test_uptime_reads_the_hours_not_rolled_up_yet_from_raw_results(
    engine: AsyncEngine
) -> None:
    monitor_id = await add_monitor(engine, name="m")
    await store_results(engine, monitor_id, 3)
    await roll_up(engine, DAY0 + timedelta(hours=2, minutes=5))  # hours 0 and 1
    async with engine.connect() as connection:
        figures = await queries.uptime(connection, monitor_id, DAY0, DAY0 + timedelta(hours=3))
    assert (figures.checks, figures.up) == (3 * 59, 3 * 58)
    assert figures.histogram.quantile(1.0) is not None


async def test_an_empty_database_starts_rolling_up_from_the_present(
    engine: AsyncEngine
) -> None:
    # No results yet: nothing to roll up, and the mark is set to the last ended hour
    # (23:00 the day before DAY0, since two minutes of grace reach back over midnight).
    assert await roll_up(engine, DAY0) == 0
    monitor_id = await add_monitor(engine, name="m")
    await store_results(engine, monitor_id, 1)
    assert await roll_up(engine, DAY0 + timedelta(hours=1, minutes=5)) == 2
    assert [row[1:] for row in await table(engine, t.rollups_hourly)] == [(59, 58)]


async def test_hours_with_results_still_waiting_to_be_written_are_not_rolled_up(
    engine: AsyncEngine
) -> None:
    monitor_id = await add_monitor(engine, name="m")
    await store_results(engine, monitor_id, 4)
    # The writer still holds a result from 01:30 (say, after a database outage).
    waiting = int((DAY0 + timedelta(hours=1, minutes=30)).timestamp() * 1000)
    assert await roll_up(engine, DAY0 + timedelta(hours=5), unwritten_ms=waiting) == 1
    assert await roll_up(engine, DAY0 + timedelta(hours=5)) == 3  # once written: the rest
