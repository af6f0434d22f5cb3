"""A monitor checked from several locations, with what the engine, the probes and the
rollup job would have written for it: raw results of the last minutes (the hour before
the current one is not rolled up yet), an hourly rollup two hours ago and a daily one
three days ago per location, and a regional problem at fra.

Per location (24 hours | 7 and 30 days, checks/up):
  fra    assigned, newest results up, down, down, down  -> down   14/9  | 114/99
  local  assigned (the server's own), last heard 10 min  -> stale   2/2  |   2/2
  nyc    assigned, never checked                         -> unknown 0/0  |   0/0
  waw    assigned, all up                                -> up     13/13 | 113/113
  ams    not assigned, checked two hours ago             -> stale   5/0  |   5/0
Combined: 34/24 | 234/214.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import insert, select, update

from dozor.core.rollups import DAY, HOUR, Rollup
from dozor.store import tables as t
from dozor.store.queries import ROLLED_UP, rollup_row
from tests.api.conftest import Person
from tests.api.seed import database

MONITOR = {"name": "shop", "kind": "tcp", "host": "127.0.0.1", "port": 9,
           "confirm-after": 3, "locations": ["fra", "local", "nyc", "waw"]}
Checks = list[tuple[bool, float | None]]
# location: (checks in the hour two hours ago, checks on the day three days ago,
#            raw results as (seconds ago, up, latency)), oldest first
SEED: dict[str, tuple[Checks, Checks, list[tuple[float, bool, int | None]]]] = {
    "fra": ([(True, 100.0)] * 8 + [(False, 100.0)] * 2, [(True, 100.0)] * 90 +
            [(False, 100.0)] * 10,
            [(4, True, 200), (3, False, None), (2, False, None), (1, False, None)]),
    "local": ([], [], [(610, True, 30), (600, True, 30)]),
    "waw": ([(True, 50.0)] * 10, [(True, 50.0)] * 100,
            [(3.5, True, 40), (2.5, True, 40), (1.5, True, 40)]),
    "ams": ([(False, None)] * 5, [], []),
}


def rollup(checks: Checks) -> Rollup:
    made = Rollup()
    for up, latency in checks:
        made.add(up, latency)
    return made


async def monitor(client: httpx.AsyncClient, owner: Person, body: dict[str, Any]) -> int:
    created = await client.post("/api/v1/monitors", json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def seeded_monitor(client: httpx.AsyncClient, owner: Person, database_url: str,
                         body: dict[str, Any] = MONITOR) -> int:
    """The monitor, created over the API, with the seed's data."""
    monitor_id = await monitor(client, owner, body)
    await seed(database_url, monitor_id, datetime.now(UTC))
    return monitor_id


async def seed(database_url: str, monitor_id: int, now: datetime) -> None:
    hour = int(now.timestamp()) // HOUR * HOUR
    two_hours_ago, three_days_ago = hour - 2 * HOUR, (hour // DAY - 3) * DAY
    now_ms = int(now.timestamp() * 1000)
    async with database(database_url) as connection:
        ids = {name: await location(connection, name, now) for name in SEED}
        for name, (hourly, daily, raw) in SEED.items():
            if hourly:
                await connection.execute(insert(t.rollups_hourly), rollup_row(
                    (monitor_id, ids[name], two_hours_ago), rollup(hourly)))
            # A day before today is read from the daily rollups: that hour is in its day's.
            days = {three_days_ago: daily} | (
                {two_hours_ago // DAY * DAY: hourly} if two_hours_ago < hour // DAY * DAY
                else {})
            for day, checks in days.items():
                if checks:
                    await connection.execute(insert(t.rollups_daily), rollup_row(
                        (monitor_id, ids[name], day), rollup(checks)))
            if raw:
                await connection.execute(insert(t.results), [
                    {"monitor_id": monitor_id, "location_id": ids[name],
                     "at": now_ms - int(ago * 1000), "status": int(up), "latency_ms": latency,
                     "error": None if up else 3} for ago, up, latency in raw])
        await connection.execute(insert(t.meta).values(key=ROLLED_UP, value=hour - HOUR))
        await connection.execute(update(t.monitor_state)
                                 .where(t.monitor_state.c.monitor_id == monitor_id)
                                 .values(regional=["fra"]))


async def location(connection: Any, name: str, now: datetime) -> int:
    found = await connection.scalar(select(t.locations.c.id).where(t.locations.c.name == name))
    if found is None:
        found = (await connection.execute(insert(t.locations).values(name=name, created_at=now)
                                          .returning(t.locations.c.id))).scalar_one()
    return int(found)
