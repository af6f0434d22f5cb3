"""Recording state changes: incidents opened and closed, the state-change feed, listeners.

Everything is batched: one statement opens every incident of a batch (with RETURNING),
one closes them, one appends the changes. A mass outage of ten thousand monitors is then
a handful of statements, not thirty thousand round trips. Open incident ids are kept in
memory by the writer (the only one that opens or closes incidents).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.core.statemachine import Transition
from dozor.core.types import MonitorState
from dozor.engine.evaluator import Observation
from dozor.store import tables as t


@dataclass(frozen=True, slots=True)
class StateChange:
    """A change of a monitor's state, committed with the transaction it is handed in."""

    monitor_id: int
    org_id: int
    monitor_name: str
    previous: MonitorState
    current: MonitorState
    at: datetime
    flapping: bool
    incident_id: int | None
    reason: str | None


Listener = Callable[[AsyncConnection, StateChange], Awaitable[None]]


async def record_transitions(
    connection: AsyncConnection, batch: Sequence[Observation],
    open_incidents: Mapping[int, int], location_id: int, listeners: Sequence[Listener],
) -> dict[int, int | None]:
    """Write a batch's transitions; return each touched monitor's open incident (or None)."""
    items = [(o, tr) for o in batch for tr in o.transitions]
    if not items:
        return {}
    opened = iter(await _open_incidents(connection, items, location_id))
    incidents: dict[int, int | None] = {}
    closes, changes = [], []
    for o, transition in items:
        monitor_id = o.monitor.id
        current = incidents[monitor_id] if monitor_id in incidents \
            else open_incidents.get(monitor_id)
        if transition.incident == "open":
            current = next(opened)
        elif transition.incident == "close" and current is not None:
            closes.append({"incident": current, "closed_at": transition.at,
                           "resolution": _resolution(transition)})
        changes.append(_change(o, transition, current))
        incidents[monitor_id] = None if transition.incident == "close" else current
    await _close_incidents(connection, closes)
    await connection.execute(insert(t.state_changes), [_change_row(c) for c in changes])
    for change in changes:
        for listener in listeners:
            await listener(connection, change)
    return incidents


async def _open_incidents(connection: AsyncConnection,
                          items: list[tuple[Observation, Transition]],
                          location_id: int) -> list[int]:
    rows = [_incident_row(o, tr, location_id) for o, tr in items if tr.incident == "open"]
    if not rows:
        return []
    statement = insert(t.incidents).returning(t.incidents.c.id, sort_by_parameter_order=True)
    return [int(i) for i in (await connection.execute(statement, rows)).scalars()]


async def _close_incidents(connection: AsyncConnection, closes: list[dict[str, Any]]) -> None:
    if closes:
        await connection.execute(
            update(t.incidents).where(t.incidents.c.id == bindparam("incident"))
            .values(closed_at=bindparam("closed_at"), resolution=bindparam("resolution")),
            closes,
        )


def _incident_row(o: Observation, transition: Transition, location_id: int) -> dict[str, Any]:
    outcome = o.outcome
    return {"org_id": o.monitor.org_id, "monitor_id": o.monitor.id,
            "opened_at": transition.at,
            "cause": (outcome.message if outcome and outcome.message else "down"),
            "first_error": int(outcome.error) if outcome and outcome.error else None,
            "location_id": location_id}


def _resolution(transition: Transition) -> str:
    return "paused" if transition.current is MonitorState.PAUSED else "recovered"


def _change(o: Observation, transition: Transition, incident_id: int | None) -> StateChange:
    monitor = o.monitor
    reason = o.outcome.message if o.outcome is not None else None
    return StateChange(monitor.id, monitor.org_id, monitor.name, transition.previous,
                       transition.current, transition.at, transition.flapping, incident_id,
                       reason)


def _change_row(change: StateChange) -> dict[str, Any]:
    return {"org_id": change.org_id, "monitor_id": change.monitor_id, "at": change.at,
            "previous": change.previous.value, "current": change.current.value,
            "flapping": change.flapping, "incident_id": change.incident_id,
            "reason": change.reason}
