"""Pruning what is past its retention window: raw results, rollups, old incidents.

Raw results are deleted monitor by monitor, so each delete walks the primary key
(monitor, time) instead of scanning the whole table, and no transaction holds the
database for long.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from dozor.store import tables as t

CHUNK = 500  # monitors per transaction


@dataclass
class Windows:
    raw: timedelta
    hourly: timedelta
    daily: timedelta


@dataclass
class PruneReport:
    results: int = 0
    rollups_hourly: int = 0
    rollups_daily: int = 0
    incidents: int = 0
    state_changes: int = 0

    def lines(self) -> list[str]:
        return [f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}" for f in fields(self)]


async def prune(engine: AsyncEngine, windows: Windows, now: datetime,
                dry_run: bool = False) -> PruneReport:
    """Delete (or, with ``dry_run``, count) everything past its window at ``now``."""
    report = PruneReport()
    raw_cutoff_ms = int((now - windows.raw).timestamp() * 1000)
    async with engine.connect() as connection:
        ids = list((await connection.execute(select(t.monitors.c.id))).scalars())
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        condition = and_(t.results.c.monitor_id.in_(chunk), t.results.c.at < raw_cutoff_ms)
        report.results += await _remove(engine, t.results, condition, dry_run)
    hourly_cutoff = int((now - windows.hourly).timestamp())
    daily_cutoff = (now - windows.daily)
    report.rollups_hourly = await _remove(
        engine, t.rollups_hourly, t.rollups_hourly.c.bucket < hourly_cutoff, dry_run)
    report.rollups_daily = await _remove(
        engine, t.rollups_daily, t.rollups_daily.c.bucket < int(daily_cutoff.timestamp()),
        dry_run)
    report.state_changes = await _remove(
        engine, t.state_changes, t.state_changes.c.at < daily_cutoff, dry_run)
    report.incidents = await _remove(
        engine, t.incidents, t.incidents.c.closed_at < daily_cutoff, dry_run)
    return report


async def _remove(engine: AsyncEngine, table: Table, condition: ColumnElement[bool],
                  dry_run: bool) -> int:
    async with engine.begin() as connection:
        return await _count(connection, table, condition) if dry_run else \
            (await connection.execute(delete(table).where(condition))).rowcount


async def _count(connection: AsyncConnection, table: Table,
                 condition: ColumnElement[bool]) -> int:
    return int(await connection.scalar(select(func.count()).select_from(table)
                                       .where(condition)) or 0)
