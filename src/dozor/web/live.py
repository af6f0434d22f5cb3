"""Live states for the dashboard: state changes and regional problems reach open pages
over server-sent events.

The hub is a state-change listener of the engine's result writer: it stages each change
while the writer's transaction runs and hands the staged ones to subscribers only after
that transaction commits, so a page never shows a state the database does not hold. A
regional problem is no state change: the writer hands the ones a batch changed to
``regional`` after the commit. Each subscriber has a bounded queue; one that falls behind
is told to reload instead of holding memory.

Two events, one monitor each (``id``)::

    state     {"id": 7, "state": "down", "since": "2026-12-01T00:00:00+00:00"}
    regional  {"id": 7, "regional": ["fra"]}   (an empty list: the problem cleared)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.engine.ingest import RegionalChange
from dozor.engine.transitions import StateChange

QUEUE_LIMIT = 256
Event = tuple[str, str]  # the event's name, its data (JSON)


def state_event(monitor_id: int, state: str, since: datetime | None) -> Event:
    return "state", json.dumps({"id": monitor_id, "state": state,
                                "since": since.isoformat() if since else None})


def regional_event(monitor_id: int, regional: Sequence[str]) -> Event:
    return "regional", json.dumps({"id": monitor_id, "regional": list(regional)})


def event_monitor(event: Event) -> int:
    return int(json.loads(event[1])["id"])


@dataclass(eq=False)
class Subscriber:
    org_id: int
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    behind: bool = False


class LiveStates:
    def __init__(self) -> None:
        self._staged: list[StateChange] = []
        self._subscribers: set[Subscriber] = set()

    async def stage(self, _: AsyncConnection, change: StateChange) -> None:
        """The listener: called inside the writer's transaction."""
        self._staged.append(change)

    def committed(self) -> None:
        """The after-commit callback: publish what the committed batch changed."""
        staged, self._staged = self._staged, []
        for change in staged:
            self._publish(change.org_id, state_event(change.monitor_id, change.current.value,
                                                     change.at))

    def regional(self, changes: Sequence[RegionalChange]) -> None:
        """Called by the writer after a commit with the regional problems it changed."""
        for change in changes:
            self._publish(change.org_id, regional_event(change.monitor_id, change.regional))

    def _publish(self, org_id: int, event: Event) -> None:
        for subscriber in self._subscribers:
            if subscriber.org_id != org_id or subscriber.behind:
                continue
            try:
                subscriber.queue.put_nowait(event)
            except asyncio.QueueFull:
                subscriber.behind = True  # told to reload by the stream

    def subscribe(self, org_id: int) -> Subscriber:
        subscriber = Subscriber(org_id)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
