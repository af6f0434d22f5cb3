"""Uptime for any range comes from rollups; retention removes exactly what is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.config.specs import parse_monitor
from dozor.core.rollups import DAY, HOUR, Rollup
from dozor.store import monitors as store
from dozor.store import queries
from dozor.store import tables as t
from dozor.store.queries import ROLLED_UP, rollup_row
from dozor.store.retention import Windows, prune
from tests import fakes  # noqa: F401

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


async def monitor(engine: AsyncEngine) -> int:
    async with engine.begin() as connection:
        return await store.create_monitor(connection, parse_monitor(
            {"name": "m", "kind": "scripted", "key": "m"}))


def rollup(checks: int, up: int) -> Rollup:
    r = Rollup()
    for i in range(checks):
        r.add(i < up, 100.0)
    return r


async def test_uptime_combines_daily_and_hourly_rollups(engine: AsyncEngine) -> None:
    monitor_id = await monitor(engine)
    today = int(NOW.timestamp()) // DAY * DAY
    hourly = [rollup_row((monitor_id, 1, today + h * HOUR), rollup(60, 60 if h else 30))
              for h in range(12)]
    daily = [rollup_row((monitor_id, 1, today - d * DAY), rollup(1440, 1440 - d))
             for d in range(1, 8)]
    async with engine.begin() as connection:
        await connection.execute(insert(t.rollups_hourly), hourly)
        await connection.execute(insert(t.rollups_daily), daily)
        await connection.execute(insert(t.meta).values(key=ROLLED_UP, value=today + 12 * HOUR))
        last_day = await queries.uptime(connection, monitor_id, NOW - timedelta(hours=12), NOW)
        week = await queries.uptime(connection, monitor_id, NOW - timedelta(days=7), NOW)
    assert (last_day.checks, last_day.up) == (720, 690)
    # Seven days back from noon: 6 whole days (days 1..6), today's 12 hours from the
    # hourly table; day 7's afternoon hours are not in the hourly table here.
    assert week.checks == 720 + 6 * 1440
    assert week.up == 690 + sum(1440 - d for d in range(1, 7))
    assert week.histogram.quantile(0.5) is not None


async def test_retention_removes_exactly_what_is_past_its_window(engine: AsyncEngine) -> None:
    monitor_id = await monitor(engine)
    ms = int(NOW.timestamp() * 1000)
    results = [{"monitor_id": monitor_id, "at": ms - days * 86_400_000, "location_id": 1,
                "status": 1} for days in (0, 1, 13, 15, 30)]
    async with engine.begin() as connection:
        await connection.execute(insert(t.results), results)
    windows = Windows(raw=timedelta(days=14), hourly=timedelta(days=90),
                      daily=timedelta(days=730))
    dry = await prune(engine, windows, NOW, dry_run=True)
    assert dry.results == 2
    async with engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(t.results)) == 5
    done = await prune(engine, windows, NOW)
    assert done.results == 2
    async with engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(t.results)) == 3
    later = await prune(engine, windows, NOW + timedelta(days=14))
    assert later.results == 2  # moving time forward makes the next ones due
