"""Live states: a change of a monitor's state or regional problem reaches open pages of
its organisation (a sub-account's only for the monitors it sees) only after its
transaction commits; a page that falls behind is told to reload instead of piling up."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from dozor.core.types import MonitorState
from dozor.engine.transitions import StateChange
from dozor.settings import Settings
from dozor.store import tables as t
from dozor.web.live import QUEUE_LIMIT, LiveStates
from tests.api.conftest import log_in, sign_up, sub_account
from tests.api.seed import database
from tests.engine.conftest import eventually
from tests.probe.server_helpers import add_monitor, add_probe, bearer, result
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
    name, data = mine.queue.get_nowait()
    assert name == "state" and json.loads(data) == {
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


class Stream:
    """One page's event stream, read in the background: ``next()`` is its next event
    after the ones it started with."""

    def __init__(self, client: httpx.AsyncClient, session: str, ids: list[int]) -> None:
        self.client, self.ids = client, ids
        self.cookie = {"Cookie": f"dozor_session={session}"}
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Stream:
        self.task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def _read(self) -> None:
        ids = ",".join(map(str, self.ids))
        async with self.client.stream("GET", f"/events?ids={ids}",
                                      headers=self.cookie) as stream:
            name = ""
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    await self.events.put((name, json.loads(line.removeprefix("data: "))))

    async def next(self) -> tuple[str, dict[str, Any]]:
        async with asyncio.timeout(10):
            return await self.events.get()

    async def opening(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        return [await self.next() for _ in range(count)]


async def test_a_regional_problem_reaches_open_pages_after_its_commit_and_only_theirs(
        database_url: str, tmp_path: Path) -> None:
    settings = Settings.model_validate({
        "data_dir": tmp_path, "database_url": database_url, "signup": True,
        "reload_interval": "0.1s", "flush_interval": "0.05s"})
    async with serving(settings) as (url, app), httpx.AsyncClient(base_url=url) as client:
        owner = await sign_up(client, "ala@example.com", "Ala")
        await sub_account(client, owner, "web@example.com", ["web"], role="viewer")
        probes = {name: await add_probe(database_url, f"{name}-1", name)
                  for name in ("fra", "waw")}
        # Checked from fra and waw (not here): one of the two down is a regional problem.
        shop, web = [await add_monitor(client, owner.headers, name, kind="tcp",
                                       host="127.0.0.1", port=9, interval="1h",
                                       tags=[name], locations=["fra", "waw"],
                                       **{"confirm-after": 1})
                     for name in ("shop", "web")]

        async def held() -> bool:  # the engine reloads every 0.1 s
            return {shop, web} <= set(app.state.engine.monitors)
        await eventually(held)

        async def deliver(monitor_id: int, location: str, ok: bool) -> None:
            at = int(datetime.now(UTC).timestamp() * 1000)
            sent = await client.post("/probe/v1/results", headers=bearer(probes[location]),
                                     json={"results": [result(monitor_id, at, ok=ok)],
                                           "dropped": 0})
            assert sent.status_code == 200, sent.text

        async def stored(monitor_id: int) -> Any:
            async with database(database_url) as connection:
                return await connection.scalar(select(t.monitor_state.c.regional).where(
                    t.monitor_state.c.monitor_id == monitor_id))

        owner_session = await log_in(client, owner.email)
        viewer_session = await log_in(client, "web@example.com",
                                      organisation_id=owner.org_id)
        async with Stream(client, owner_session, [shop, web]) as owners, \
                Stream(client, viewer_session, [shop, web]) as viewers:
            # As they are now: each one's state and (no) regional problem; the viewer,
            # limited to "web", is told nothing of shop.
            assert sorted((n, e["id"]) for n, e in await owners.opening(4)) == sorted(
                [("regional", shop), ("regional", web), ("state", shop), ("state", web)])
            assert sorted(await viewers.opening(2)) == [
                ("regional", {"id": web, "regional": []}),
                ("state", {"id": web, "state": "unknown", "since": None})]

            await deliver(shop, "waw", ok=True)
            assert (await owners.next())[1]["state"] == "up"
            await deliver(shop, "fra", ok=False)
            assert await owners.next() == ("regional", {"id": shop, "regional": ["fra"]})
            assert await stored(shop) == ["fra"]  # told after its commit
            await deliver(shop, "fra", ok=True)
            assert await owners.next() == ("regional", {"id": shop, "regional": []})
            assert await stored(shop) is None

            await deliver(web, "waw", ok=False)
            assert await owners.next() == ("regional", {"id": web, "regional": ["waw"]})
            # The viewer's next event is web's: shop's three came before it, not to them.
            assert await viewers.next() == ("regional", {"id": web, "regional": ["waw"]})
