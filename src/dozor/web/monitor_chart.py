"""The monitor page's latency chart over a range: the timing phases of each check stacked,
for a monitor checked from one location; a line per location for one checked from
several, so no location's latency hides in another's. Each check in the 1-hour and
24-hour ranges (the newest ``CHART_POINTS``, times the number of locations for lines),
hourly means from the rollups for the 7-day range and where no raw results are left."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.core import phases as packed_phases
from dozor.core.rollups import HOUR
from dozor.core.types import ResultStatus
from dozor.store import queries
from dozor.store import tables as t
from dozor.web.svg import (
    SERIES_COLOURS,
    LatencyPoint,
    PhasePoint,
    Series,
    latency_chart,
    location_chart,
)

HOURLY_RANGES = {"7d"}  # drawn from hourly means, not from each check
CHART_POINTS = 1500  # the newest results in the range; older ones are in the rollups


@dataclass(frozen=True, slots=True)
class Chart:
    svg: str  # empty without a check in the range
    # A line per location: (location, its colour) for the legend; empty for phases.
    legend: list[tuple[str, int]] = field(default_factory=list)


async def load(conn: AsyncConnection, monitor_id: int, locations: list[str],
               range_key: str, start: datetime, end: datetime) -> Chart:
    """``locations`` are the page's, in its order (they give the lines' colours); with
    fewer than two, the chart stacks phases."""
    label = f"latency, last {range_key}"
    if len(locations) < 2:
        points = await _phase_points(conn, monitor_id, range_key, start)
        return Chart(latency_chart(points, start.timestamp(), end.timestamp(), label=label)
                     if points else "")
    # The page lists every location with checks in the last year: each line is one of them.
    lines = await _location_points(conn, monitor_id, len(locations), range_key, start)
    series = [Series(name, colour, lines[name]) for colour, name in enumerate(locations)
              if lines.get(name)]
    if not series:
        return Chart("")
    return Chart(location_chart(series, start.timestamp(), end.timestamp(), label=label),
                 [(s.label, s.colour % SERIES_COLOURS) for s in series])


async def _phase_points(conn: AsyncConnection, monitor_id: int, range_key: str,
                        start: datetime) -> list[PhasePoint]:
    r = t.results.c
    results = (await conn.execute(
        select(r.at, r.status, r.latency_ms, r.detail, r.phases)
        .where(r.monitor_id == monitor_id, r.at >= int(start.timestamp() * 1000))
        .order_by(r.at.desc()).limit(CHART_POINTS))).all()
    points = [PhasePoint(res.at / 1000, _phases(res), res.status != ResultStatus.DOWN)
              for res in reversed(results) if res.status != ResultStatus.MAINTENANCE]
    if range_key in HOURLY_RANGES or not points:
        # Hourly means from the rollups: raw results are kept for a short window only.
        first = int(start.timestamp()) // HOUR * HOUR
        hours = (await queries.hourly_latency(conn, [monitor_id], first)).get(monitor_id, {})
        points = [PhasePoint(float(hour), {"rest": mean}, True)
                  for hour, mean in sorted(hours.items())]
    return points


async def _location_points(conn: AsyncConnection, monitor_id: int, count: int,
                           range_key: str, start: datetime) -> dict[str, list[LatencyPoint]]:
    """Each location's points, by its name, oldest first."""
    r = t.results.c
    results = (await conn.execute(
        select(r.at, r.status, r.latency_ms, t.locations.c.name)
        .join(t.locations, t.locations.c.id == r.location_id)
        .where(r.monitor_id == monitor_id, r.at >= int(start.timestamp() * 1000))
        .order_by(r.at.desc()).limit(CHART_POINTS * count))).all()
    lines: dict[str, list[LatencyPoint]] = {}
    for res in reversed(results):
        down = res.status == ResultStatus.DOWN
        if res.status == ResultStatus.MAINTENANCE or (res.latency_ms is None and not down):
            continue  # left out of uptime, or up without a time: nothing to draw
        lines.setdefault(res.name, []).append(
            LatencyPoint(res.at / 1000, None if down else float(res.latency_ms)))
    if range_key in HOURLY_RANGES or not lines:
        first = int(start.timestamp()) // HOUR * HOUR
        names = dict((await conn.execute(select(t.locations.c.id, t.locations.c.name))).all())
        by_location = await queries.hourly_latency_by_location(conn, monitor_id, first)
        lines = {names.get(location_id, f"#{location_id}"): [
            LatencyPoint(float(hour), mean) for hour, mean in sorted(hours.items())]
            for location_id, hours in by_location.items()}
    return lines


def _phases(result: Any) -> dict[str, float]:
    """The result's timing phases (packed with every result since migration 0013; before
    it, kept in the details of failures and state changes), the rest of its total as the
    last part."""
    if result.phases is not None:
        parts = packed_phases.unpack(result.phases)
        total = float(result.latency_ms or 0)
        return parts | {"rest": max(0.0, total - sum(parts.values()))}
    if result.detail:
        phases = json.loads(result.detail).get("phases") or {}
        if phases:
            parts = {k: float(phases[k]) for k in ("dns", "connect", "tls", "first_byte")
                     if k in phases}
            total = float(phases.get("total", result.latency_ms or 0))
            return parts | {"rest": max(0.0, total - sum(parts.values()))}
    return {"rest": float(result.latency_ms or 0)}
