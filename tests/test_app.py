"""The served application: health, and heartbeat pings changing a monitor's state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from dozor.config.specs import parse_monitor
from dozor.engine.engine import Engine
from dozor.settings import Settings
from dozor.store import monitors as store
from dozor.store import tables as t
from tests.engine.conftest import eventually
from tests.servers.dozor import serving


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, Engine]]:
    settings = Settings.model_validate({
        "data_dir": tmp_path, "database_url": database_url,
        "flush_interval": 0.05, "reload_interval": 0.1,
    })
    async with serving(settings) as (base, app):
        yield base, app.state.engine


async def state(engine: Engine, monitor_id: int) -> str:
    async with engine.database.connect() as connection:
        return str(await connection.scalar(select(t.monitor_state.c.state)
                                           .where(t.monitor_state.c.monitor_id == monitor_id)))


async def test_health_answers(served: tuple[str, Engine]) -> None:
    base, _ = served
    async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"


async def test_pings_drive_a_heartbeat_monitor(served: tuple[str, Engine]) -> None:
    base, engine = served
    spec = parse_monitor({"name": "backup", "kind": "heartbeat", "period": "1h",
                          "grace": "5m", "interval": "1s", "confirm-after": 1})
    async with engine.database.begin() as connection:
        monitor_id = await store.create_monitor(connection, spec)
        token = (await store.find_monitor(connection, "backup")).push_token
    assert token
    await engine.reload()
    await eventually(lambda: _is(engine, monitor_id, "up"))  # new: within its first period

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/ping/{token}/fail") as response:
            assert response.status == 200 and await response.text() == "OK"
        await eventually(lambda: _is(engine, monitor_id, "down"), within=3)
        async with session.get(f"{base}/ping/{token}") as response:
            assert response.status == 200
        await eventually(lambda: _is(engine, monitor_id, "up"), within=3)
        async with session.get(f"{base}/ping/not-a-token") as response:
            assert response.status == 404
        async with session.get(f"{base}/ping/{token}/explode") as response:
            assert response.status == 404


async def _is(engine: Engine, monitor_id: int, expected: str) -> bool:
    return await state(engine, monitor_id) == expected


async def test_a_ping_that_cannot_be_stored_gets_503_so_the_job_retries(
        served: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    base, engine = served
    spec = parse_monitor({"name": "nightly", "kind": "heartbeat", "period": "1d"})
    async with engine.database.begin() as connection:
        await store.create_monitor(connection, spec)
        token = (await store.find_monitor(connection, "nightly")).push_token
    await engine.reload()

    async def unreachable(ids: set[int]) -> None:
        raise OSError("connection refused")
    monkeypatch.setattr(engine.pings, "_write", unreachable)
    async with aiohttp.ClientSession() as session, \
            session.post(f"{base}/ping/{token}") as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
