"""Live states for the dashboard: state changes reach open pages over server-sent events.

The hub is a state-change listener of the engine's result writer: it stages each change
while the writer's transaction runs and hands the staged ones to subscribers only after
that transaction commits, so a page never shows a state the database does not hold. Each
subscriber has a bounded queue; one that falls behind is told to reload instead of
holding memory.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.engine.transitions import StateChange

QUEUE_LIMIT = 256


@dataclass(eq=False)
class Subscriber:
    org_id: int
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
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
            event = json.dumps({"id": change.monitor_id, "state": change.current.value,
                                "since": change.at.isoformat()})
            for subscriber in self._subscribers:
                if subscriber.org_id != change.org_id or subscriber.behind:
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
