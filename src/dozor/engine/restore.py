"""What a server node reads to take up a monitor: after a start, a configuration
change, or a takeover from another node (``engine.cluster``). Its stored state gives the
monitor's own tracker; its locations' recent results rebuild each location's tracker, so
a monitor with a quorum counts its locations at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from dozor.core.statemachine import Tracker
from dozor.core.types import MonitorState, ResultStatus
from dozor.store import tables as t


async def load_states(connection: Any, ids: list[int], everything: bool) -> dict[int, Any]:
    query = select(t.monitor_state)
    if not everything:
        if not ids:
            return {}
        query = query.where(t.monitor_state.c.monitor_id.in_(ids))
    return {row.monitor_id: row for row in (await connection.execute(query)).all()}


# A monitor's locations -> their recent outcomes (time, ok), oldest first.
Views = dict[str, list[tuple[datetime, bool]]]


async def load_views(connection: Any, freshness: dict[int, timedelta]) -> dict[int, Views]:
    """Each monitor's locations' results within its quorum's freshness (``core.quorum``):
    enough to rebuild each location's tracker (``Evaluator.replay``)."""
    if not freshness:
        return {}
    since = int((datetime.now(UTC) - max(freshness.values())).timestamp() * 1000)
    r = t.results.c
    rows = (await connection.execute(
        select(r.monitor_id, t.locations.c.name, r.at, r.status)
        .join(t.locations, t.locations.c.id == r.location_id)
        .where(r.monitor_id.in_(list(freshness)), r.at >= since,
               r.status != int(ResultStatus.MAINTENANCE))
        .order_by(r.monitor_id, r.at))).all()
    views: dict[int, Views] = {}
    for monitor_id, location, at_ms, status in rows:
        views.setdefault(monitor_id, {}).setdefault(location, []).append(
            (datetime.fromtimestamp(at_ms / 1000, UTC), status == int(ResultStatus.UP)))
    return views


def tracker_from(row: Any) -> Tracker:
    return Tracker(state=MonitorState(row.state), since=row.since, failures=row.failures,
                   successes=row.successes, history=row.history, history_len=row.history_len,
                   flapping=row.flapping, incident_open=row.incident_id is not None)
