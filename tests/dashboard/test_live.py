"""Live states: a change reaches open pages of its organisation only after its
transaction commits; a page that falls behind is told to reload instead of piling up."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from dozor.core.types import MonitorState
from dozor.engine.transitions import StateChange
from dozor.web.live import QUEUE_LIMIT, LiveStates


def change(monitor_id: int, org_id: int = 1,
           state: MonitorState = MonitorState.DOWN) -> StateChange:
    return StateChange(monitor_id=monitor_id, org_id=org_id, monitor_name=f"m{monitor_id}",
                       previous=MonitorState.UP, current=state,
                       at=datetime(2026, 12, 1, tzinfo=UTC), flapping=False,
                       incident_id=None, reason=None)


async def test_a_change_is_published_after_commit_to_its_organisation_only() -> None:
    live = LiveStates()
    mine, theirs = live.subscribe(1), live.subscribe(2)
    connection: Any = None
    await live.stage(connection, change(7))
    assert mine.queue.empty()  # staged inside the transaction: not yet committed
    live.committed()
    assert json.loads(mine.queue.get_nowait()) == {
        "id": 7, "state": "down", "since": "2026-12-01T00:00:00+00:00"}
    assert theirs.queue.empty()
    live.committed()  # nothing staged: nothing sent again
    assert mine.queue.empty()


async def test_a_subscriber_that_falls_behind_is_marked_and_others_go_on() -> None:
    live = LiveStates()
    slow, fresh = live.subscribe(1), live.subscribe(1)
    connection: Any = None
    for monitor_id in range(QUEUE_LIMIT + 1):
        await live.stage(connection, change(monitor_id))
    live.committed()
    assert slow.behind and slow.queue.qsize() == QUEUE_LIMIT
    live.unsubscribe(fresh)
    await live.stage(connection, change(1, state=MonitorState.UP))
    live.committed()
    assert slow.queue.qsize() == QUEUE_LIMIT  # nothing more for one that must reload
