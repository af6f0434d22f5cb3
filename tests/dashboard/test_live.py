"""Live states: a change reaches open pages of its organisation only after its
transaction commits; a page that falls behind is told to reload instead of piling up."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from dozor.core.types import MonitorState
from dozor.engine.transitions import StateChange
from dozor.settings import Settings
from dozor.web.live import QUEUE_LIMIT, LiveStates
from tests.api.conftest import log_in, sign_up
from tests.servers.dozor import serving


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


async def test_the_stream_starts_with_the_pages_monitors_as_they_are_now(
        database_url: str, tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path, "database_url": database_url})
    async with serving(settings) as (url, _), httpx.AsyncClient(base_url=url) as client:
        owner = await sign_up(client, "ala@example.com", "Ala")
        monitor = (await client.post("/api/v1/monitors", headers=owner.headers, json={
            "name": "shop", "kind": "tcp", "host": "127.0.0.1", "port": 9,
            "interval": "1h"})).json()
        cookie = {"Cookie": f"dozor_session={await log_in(client, owner.email)}"}
        lines = []
        async with asyncio.timeout(10), client.stream(
                "GET", f"/events?ids={monitor['id']},999999", headers=cookie) as stream:
            async for line in stream.aiter_lines():
                lines.append(line)
                if line.startswith("data:"):
                    break
    assert "event: state" in lines
    assert json.loads(lines[-1].removeprefix("data: "))["id"] == monitor["id"]
