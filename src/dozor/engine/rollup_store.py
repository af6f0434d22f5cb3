"""Keeping hourly and daily rollups up to date as results are written.

Each batch's results are summed per (monitor, location, period) and folded into the
rollup of that period, which is then written back whole (one upsert per table). The
rollups of the current periods are kept in memory, so a batch only reads the database
for a period it has not seen yet (after a start, or a late result); a failed batch drops
what it touched, to be read again. One writer per monitor is assumed (see the
architecture notes on several nodes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.core.rollups import DAY, HOUR, Rollup, period_start
from dozor.core.types import ResultStatus
from dozor.store import tables as t
from dozor.store.queries import rollup_from_row
from dozor.store.upsert import upsert

Key = tuple[int, int, int]  # monitor, location, period start (epoch seconds)
PERIODS = ((t.rollups_hourly, HOUR), (t.rollups_daily, DAY))


class RollupStore:
    def __init__(self) -> None:
        self._current: dict[str, dict[Key, Rollup]] = {table.name: {} for table, _ in PERIODS}
        self._latest: dict[str, int] = {}

    async def update(self, connection: AsyncConnection, results: list[dict[str, Any]]
                     ) -> list[tuple[str, Key]]:
        """Fold raw result rows into both tables; return what was touched."""
        touched: list[tuple[str, Key]] = []
        for table, size in PERIODS:
            deltas = _sum(results, size)
            if not deltas:
                continue
            cache = self._current[table.name]
            await self._load_missing(connection, table, cache, deltas)
            for key, delta in deltas.items():
                cache[key].merge(delta)
            await upsert(connection, table, [_row(k, cache[k]) for k in deltas],
                         keys=("monitor_id", "location_id", "bucket"))
            touched += [(table.name, key) for key in deltas]
            self._evict(table.name, size, max(key[2] for key in deltas))
        return touched

    def forget(self, touched: Iterable[tuple[str, Key]]) -> None:
        """The batch that touched these failed: read them from the database next time."""
        for name, key in touched:
            self._current[name].pop(key, None)

    async def _load_missing(self, connection: AsyncConnection, table: Table,
                            cache: dict[Key, Rollup], deltas: dict[Key, Rollup]) -> None:
        missing: dict[tuple[int, int], list[int]] = defaultdict(list)
        for key in deltas:
            if key not in cache:
                cache[key] = Rollup()
                missing[(key[1], key[2])].append(key[0])
        for (location_id, bucket), monitor_ids in missing.items():
            query = select(table).where(table.c.location_id == location_id,
                                        table.c.bucket == bucket,
                                        table.c.monitor_id.in_(monitor_ids))
            for row in await connection.execute(query):
                cache[(row.monitor_id, location_id, bucket)] = rollup_from_row(row)

    def _evict(self, name: str, size: int, newest: int) -> None:
        # Keep the current and the previous period (results near the boundary still land
        # there); anything older is read from the database if it is ever needed again.
        if newest <= self._latest.get(name, 0):
            return
        self._latest[name] = newest
        cache = self._current[name]
        for key in [k for k in cache if k[2] < newest - size]:
            del cache[key]


def _sum(results: list[dict[str, Any]], size: int) -> dict[Key, Rollup]:
    deltas: dict[Key, Rollup] = defaultdict(Rollup)
    for r in results:
        if r["status"] == ResultStatus.MAINTENANCE:
            continue  # maintenance is excluded from uptime
        bucket = period_start(r["at"] // 1000, size)
        deltas[(r["monitor_id"], r["location_id"], bucket)].add(
            r["status"] == ResultStatus.UP, r["latency_ms"])
    return deltas


def _row(key: Key, r: Rollup) -> dict[str, Any]:
    monitor_id, location_id, bucket = key
    return {"monitor_id": monitor_id, "location_id": location_id, "bucket": bucket,
            "checks": r.checks, "up": r.up, "timed": r.timed, "latency_sum": r.latency_sum,
            "latency_min": r.latency_min, "latency_max": r.latency_max,
            "p50": r.histogram.quantile(0.50), "p95": r.histogram.quantile(0.95),
            "p99": r.histogram.quantile(0.99), "histogram": r.histogram.encode()}
