"""Read-side queries: what the CLI, the API and the dashboard show.

Uptime for any range is read from rollups, never by scanning raw results: whole days
from the daily rollups, the partial days at either end from the hourly ones. A
monitor's figures are per location or combined: combined is over every location's
checks together (the share of all checks that were up, latency over all timed checks),
so a monitor checked from one location has the same figures either way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Table, case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.core.rollups import DAY, HOUR, Histogram, Rollup, combine
from dozor.core.types import ResultStatus
from dozor.store import tables as t
from dozor.store.incidents import IncidentFilter, find_incidents

ROLLED_UP = "rolled_up_until"  # meta key: hours before it are in the rollup tables


async def monitor_overview(connection: AsyncConnection, org_id: int | None = None
                           ) -> Sequence[Any]:
    """Every monitor with its current state, newest information first in each column."""
    m, s = t.monitors, t.monitor_state
    query = (select(m.c.id, m.c.name, m.c.kind, m.c.tags, m.c.paused, m.c.interval_ms,
                    m.c.push_token, s.c.state, s.c.since, s.c.last_checked_at,
                    s.c.last_latency_ms, s.c.last_message, s.c.flapping, s.c.incident_id)
             .join(s, s.c.monitor_id == m.c.id).order_by(m.c.name))
    if org_id is not None:
        query = query.where(m.c.org_id == org_id)
    return (await connection.execute(query)).all()


async def incident_list(connection: AsyncConnection, open_only: bool = False,
                        monitor_id: int | None = None, limit: int = 100) -> Sequence[Any]:
    """Every organisation's incidents, newest first (for the operator's command line)."""
    where = IncidentFilter(state="open" if open_only else None, monitor_id=monitor_id)
    return await find_incidents(connection, None, where, limit=limit)


async def recent_results(connection: AsyncConnection, monitor_id: int, limit: int = 20
                         ) -> Sequence[Any]:
    r = t.results
    query = (select(r).where(r.c.monitor_id == monitor_id).order_by(r.c.at.desc())
             .limit(limit))
    return (await connection.execute(query)).all()


async def rolled_up_until(connection: AsyncConnection) -> int | None:
    """Epoch seconds of the hour the rollups reach: hours before it are rolled up."""
    value = await connection.scalar(select(t.meta.c.value).where(t.meta.c.key == ROLLED_UP))
    return None if value is None else int(value)


async def uptime(connection: AsyncConnection, monitor_id: int, start: datetime,
                 end: datetime) -> Rollup:
    """Checks, uptime and latency of a monitor between two moments, to the hour, over
    every location's checks (see :func:`uptime_by_location`)."""
    return combine((await uptime_by_location(connection, monitor_id, start, end)).values())


async def uptime_by_location(connection: AsyncConnection, monitor_id: int, start: datetime,
                             end: datetime) -> dict[int, Rollup]:
    """The same figures per location id: rollups for the hours rolled up, raw results for
    the rest (at most the open hour or two). Locations without checks are absent."""
    mark = await rolled_up_until(connection)
    first = int(start.timestamp()) // HOUR * HOUR
    last = -(-int(end.timestamp()) // HOUR) * HOUR  # rounded up to the hour
    rolled_to = min(last, mark) if mark is not None else first
    by_location: defaultdict[int, Rollup] = defaultdict(Rollup)
    for location_id, part in await _from_rollups(connection, monitor_id, first, rolled_to):
        by_location[location_id].merge(part)
    if rolled_to < last:
        await _add_results(connection, monitor_id, max(first, rolled_to), last, by_location)
    return dict(by_location)


# Constants written into the SQL, not bound: PostgreSQL only sees a GROUP BY expression
# as the selected one when both are the same text, and two parameters are not.
_DAY = literal_column(str(DAY), BigInteger)
_DAY_MS = literal_column(str(DAY * 1000), BigInteger)
DayCounts = dict[int, dict[int, tuple[int, int]]]
"""(checks, up) by monitor, then by day (epoch seconds of its first second, UTC)."""


async def daily_counts(connection: AsyncConnection, monitor_ids: Collection[int],
                       start: int, now: datetime) -> DayCounts:
    """Checks and successes per day since ``start`` (a day's first second) for many
    monitors at once, in four statements however many monitors and days: daily rollups
    for the days rolled up, hourly ones for the hours rolled up since, raw results for
    the rest, as :func:`uptime` reads them. Days without checks are absent."""
    mark = await rolled_up_until(connection)
    rolled_to = min(int(now.timestamp()) // HOUR * HOUR, mark) if mark is not None else start
    whole_days = rolled_to // DAY * DAY
    counts: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    ids = list(monitor_ids)
    for table, first, last in ((t.rollups_daily, start, whole_days),
                               (t.rollups_hourly, max(start, whole_days), rolled_to)):
        c = table.c
        day = c.bucket // _DAY * _DAY
        rows = await connection.execute(
            select(c.monitor_id, day, func.sum(c.checks), func.sum(c.up))
            .where(c.monitor_id.in_(ids), c.bucket >= first, c.bucket < last)
            .group_by(c.monitor_id, day))
        _add(counts, rows)
    r = t.results.c
    day = r.at // _DAY_MS * _DAY
    _add(counts, await connection.execute(
        select(r.monitor_id, day, func.count(), func.sum(case((r.status == ResultStatus.UP, 1),
                                                              else_=0)))
        .where(r.monitor_id.in_(ids), r.at >= max(start, rolled_to) * 1000,
               r.status != ResultStatus.MAINTENANCE)
        .group_by(r.monitor_id, day)))
    return {m: {d: (c[0], c[1]) for d, c in days.items()} for m, days in counts.items()}


def _add(counts: dict[int, dict[int, list[int]]], rows: Iterable[Any]) -> None:
    for monitor_id, day, checks, up in rows:
        total = counts[monitor_id][int(day)]
        total[0] += int(checks)
        total[1] += int(up)


async def _from_rollups(connection: AsyncConnection, monitor_id: int, first: int, last: int
                        ) -> list[tuple[int, Rollup]]:
    if first >= last:
        return []
    day_from = -(-first // DAY) * DAY
    day_to = last // DAY * DAY
    if day_from >= day_to:
        return await _rollups(connection, t.rollups_hourly, monitor_id, first, last)
    return [*await _rollups(connection, t.rollups_daily, monitor_id, day_from, day_to),
            *await _rollups(connection, t.rollups_hourly, monitor_id, first, day_from),
            *await _rollups(connection, t.rollups_hourly, monitor_id, day_to, last)]


async def _add_results(connection: AsyncConnection, monitor_id: int, start: int, end: int,
                       by_location: defaultdict[int, Rollup]) -> None:
    r = t.results
    query = select(r.c.location_id, r.c.status, r.c.latency_ms).where(
        r.c.monitor_id == monitor_id, r.c.at >= start * 1000, r.c.at < end * 1000)
    for location_id, status, latency in await connection.execute(query):
        if status != ResultStatus.MAINTENANCE:
            by_location[location_id].add(status == ResultStatus.UP, latency)


async def _rollups(connection: AsyncConnection, table: Table, monitor_id: int, start: int,
                   end: int) -> list[tuple[int, Rollup]]:
    query = select(table).where(table.c.monitor_id == monitor_id, table.c.bucket >= start,
                                table.c.bucket < end)
    return [(row.location_id, rollup_from_row(row)) for row in await connection.execute(query)]


def rollup_from_row(row: Any) -> Rollup:
    return Rollup(checks=row.checks, up=row.up, timed=row.timed, latency_sum=row.latency_sum,
                  latency_min=row.latency_min, latency_max=row.latency_max,
                  histogram=Histogram.decode(row.histogram))


def rollup_row(key: tuple[int, int, int], r: Rollup) -> dict[str, Any]:
    """The rollup tables' row for (monitor, location, period start) and a rollup."""
    monitor_id, location_id, bucket = key
    return {"monitor_id": monitor_id, "location_id": location_id, "bucket": bucket,
            "checks": r.checks, "up": r.up, "timed": r.timed, "latency_sum": r.latency_sum,
            "latency_min": r.latency_min, "latency_max": r.latency_max,
            "p50": r.histogram.quantile(0.50), "p95": r.histogram.quantile(0.95),
            "p99": r.histogram.quantile(0.99), "histogram": r.histogram.encode()}


_HOUR = literal_column(str(HOUR), BigInteger)
_HOUR_MS = literal_column(str(HOUR * 1000), BigInteger)


async def hourly_latency(connection: AsyncConnection, monitor_ids: Collection[int],
                         start: int) -> dict[int, dict[int, float]]:
    """Mean latency (ms) per hour since ``start`` (an hour's first second) for many
    monitors at once, in two statements: hourly rollups for the hours rolled up, raw
    results for the rest. Hours without a timed check are absent."""
    return await _hourly_means(connection, "monitor_id", list(monitor_ids), start)


async def hourly_latency_by_location(connection: AsyncConnection, monitor_id: int,
                                     start: int) -> dict[int, dict[int, float]]:
    """As ``hourly_latency``, for one monitor: each location's (by its id) own means."""
    return await _hourly_means(connection, "location_id", [monitor_id], start)


async def _hourly_means(connection: AsyncConnection, key: str, ids: list[int],
                        start: int) -> dict[int, dict[int, float]]:
    """Mean latency per hour, grouped by ``key`` (a column of rollups and results)."""
    mark = await rolled_up_until(connection)
    rolled_to = max(mark, start) if mark is not None else start
    sums: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    c = t.rollups_hourly.c
    rolled = await connection.execute(
        select(c[key], c.bucket, func.sum(c.latency_sum), func.sum(c.timed))
        .where(c.monitor_id.in_(ids), c.bucket >= start, c.bucket < rolled_to)
        .group_by(c[key], c.bucket))
    r = t.results.c
    hour = r.at // _HOUR_MS * _HOUR
    recent = await connection.execute(
        select(r[key], hour, func.sum(r.latency_ms), func.count(r.latency_ms))
        .where(r.monitor_id.in_(ids), r.at >= rolled_to * 1000, r.latency_ms.is_not(None))
        .group_by(r[key], hour))
    for group, bucket, total, timed in (*rolled, *recent):
        entry = sums[group][int(bucket)]
        entry[0] += float(total or 0)
        entry[1] += int(timed or 0)
    return {g: {h: s / n for h, (s, n) in hours.items() if n} for g, hours in sums.items()}
