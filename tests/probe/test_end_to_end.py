"""A real probe against a real server: the probe checks the monitor assigned to its
location, the results are stored under that location, and a server away for a while
(stopped, started again on the same address) loses none of what the probe measured."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from dozor.config.specs import parse_monitor
from dozor.probe.agent import Agent, ProbeConfig
from dozor.settings import Settings
from dozor.store import monitors as store
from dozor.store import tables as t
from tests.api.seed import database
from tests.probe.server_helpers import add_probe
from tests.servers.dozor import free_port, serving
from tests.servers.http import LocalHttpServer


async def until(condition: Callable[[], Any], seconds: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "waited too long"
        await asyncio.sleep(0.05)


async def stored(database_url: str, location: str) -> list[int]:
    """The start times of the results stored under ``location``."""
    async with database(database_url) as db:
        return list((await db.execute(
            select(t.results.c.at).join(t.locations, t.locations.c.id == t.results.c.location_id)
            .where(t.locations.c.name == location).order_by(t.results.c.at))).scalars())


async def test_a_probe_reports_from_its_location_and_survives_the_server_being_away(
        database_url: str, tmp_path: Path) -> None:
    token = await add_probe(database_url, "waw-1", "waw")
    settings = Settings.model_validate({
        "data_dir": tmp_path / "server", "database_url": database_url, "reload_interval": "1s",
        "private_targets": "allow"})
    port = free_port()
    async with LocalHttpServer() as target:
        target.serve("/health")
        async with database(database_url) as db:
            await store.create_monitor(db, parse_monitor({
                "name": "shop", "kind": "http", "url": target.url("/health"),
                "interval": "1s", "locations": ["waw"]}))
        agent = Agent(ProbeConfig(server=f"http://127.0.0.1:{port}", token=token,
                                  data_dir=tmp_path / "probe", location="waw",
                                  sync_interval=0.2, flush_interval=0.1, retry_first=0.1,
                                  retry_most=0.5))
        async with serving(settings, port):
            await agent.start()

            async def some_arrived() -> bool:
                return len(await stored(database_url, "waw")) >= 2
            await until(some_arrived)
            # The server's own location does not check a monitor assigned to "waw" only.
            assert await stored(database_url, "local") == []
        waiting = agent.buffer.size
        await asyncio.sleep(2.5)  # the server is away: the probe goes on checking
        assert agent.buffer.size > waiting
        async with serving(settings, port):
            async def all_arrived() -> bool:
                return agent.buffer.size == 0
            await until(all_arrived)
            await agent.stop()
        checked = sum(1 for r in target.requests if r.path == "/health")
    times = await stored(database_url, "waw")
    assert len(times) == len(set(times)) == checked  # every check stored, none twice
    async with database(database_url) as db:
        [probe] = (await db.execute(select(t.probes))).all()
    assert probe.last_seen_at is not None and probe.last_version
