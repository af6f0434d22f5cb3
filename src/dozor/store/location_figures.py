"""A monitor seen from each of its locations, and from all of them together: each
location's view (``core.location_view``), its newest result, and its uptime and latency
for the usual windows; ``combined`` is the same figures over every location's checks
(``store.queries``), so the locations' checks add up to the combined ones.

The locations listed are the monitor's ``locations`` in their order (the server's own,
``DOZOR_LOCATION``, for a monitor without), then any other location with checks in the
windows (one that checked it before its assignment changed), by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.core import location_view, quorum
from dozor.core.rollups import DAY, HOUR, Rollup, combine
from dozor.core.statemachine import Policy
from dozor.core.types import ErrorCode, ResultStatus
from dozor.store import queries
from dozor.store import tables as t

WINDOWS = (("24h", timedelta(days=1)), ("7d", timedelta(days=7)),
           ("30d", timedelta(days=30)), ("365d", timedelta(days=365)))


@dataclass(frozen=True, slots=True)
class Last:
    """A location's newest result."""

    at: datetime
    status: ResultStatus
    latency_ms: int | None
    error: ErrorCode | None


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    assigned: bool  # named by the monitor's locations (or the server's own, without them)
    view: str  # core.location_view: up, pending, down, maintenance, stale or unknown
    last: Last | None
    uptime: dict[str, Rollup]  # by window label; empty figures where it has no checks


@dataclass(frozen=True, slots=True)
class Figures:
    combined: dict[str, Rollup]
    last: Last | None  # the newest result from any location
    places: list[Place]


async def load(conn: AsyncConnection, monitor: Any, here: str, now: datetime | None = None,
               windows: tuple[tuple[str, timedelta], ...] = WINDOWS) -> Figures:
    """``monitor`` is a ``monitors`` row; ``here`` the server's own location's name."""
    now = now or datetime.now(UTC)
    by_window = {label: await queries.uptime_by_location(conn, monitor.id, now - span, now)
                 for label, span in windows}
    names = {row.id: row.name for row in await conn.execute(select(t.locations))}
    ids = {name: location_id for location_id, name in names.items()}
    assigned = list(monitor.locations or [here])
    checked = {location_id for figures in by_window.values() for location_id in figures}
    others = sorted((names.get(i, f"#{i}"), i) for i in checked if names.get(i) not in assigned)
    places = []
    for name, location_id in [(name, ids.get(name)) for name in assigned] + others:
        newest = [] if location_id is None else await _newest(conn, monitor, location_id, now)
        places.append(Place(
            name, name in assigned, _view(monitor, newest, location_id in checked, now),
            newest[0] if newest else None,
            {label: figures.get(location_id, Rollup()) if location_id is not None else Rollup()
             for label, figures in by_window.items()}))
    lasts = [place.last for place in places if place.last is not None]
    return Figures({label: combine(figures.values()) for label, figures in by_window.items()},
                   max(lasts, key=lambda last: last.at) if lasts else None, places)


def _view(monitor: Any, newest: list[Last], has_checks: bool, now: datetime) -> str:
    if not newest and has_checks:
        return location_view.STALE  # checks in the rollups, none among the raw results kept
    window = quorum.fresh_for(monitor.interval_ms / 1000, monitor.timeout_ms / 1000)
    return location_view.view([last.status for last in reversed(newest)],
                              newest[0].at if newest else None, _policy(monitor), window, now)


def _policy(monitor: Any) -> Policy:
    return Policy(confirm_after=monitor.confirm_after, recover_after=monitor.recover_after)


async def _newest(conn: AsyncConnection, monitor: Any, location_id: int, now: datetime
                  ) -> list[Last]:
    """The location's newest results, newest first, as many as its view folds."""
    count = location_view.replayed(_policy(monitor))
    r = t.results.c
    query = (select(r.at, r.status, r.latency_ms, r.error)
             .where(r.monitor_id == monitor.id, r.location_id == location_id)
             .order_by(r.at.desc()).limit(count))
    # Bounded: the key is (monitor, time, location), so a location's rows are found by
    # walking back through every location's; a day (or twice its checks' span) is enough
    # for a location that still reports.
    span = max(DAY, 2 * count * monitor.interval_ms // 1000)
    rows = (await conn.execute(query.where(r.at >= (int(now.timestamp()) - span) * 1000))).all()
    if not rows:  # silent longer: its last hour, found by the hourly rollups' key
        h = t.rollups_hourly.c
        hour = await conn.scalar(select(func.max(h.bucket)).where(
            h.monitor_id == monitor.id, h.location_id == location_id))
        if hour is not None:
            rows = (await conn.execute(query.where(
                r.at >= hour * 1000, r.at < (hour + HOUR) * 1000))).all()
    return [Last(datetime.fromtimestamp(row.at / 1000, UTC), ResultStatus(row.status),
                 row.latency_ms, ErrorCode(row.error) if row.error else None) for row in rows]
