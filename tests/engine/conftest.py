from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.config.specs import parse_monitor
from dozor.engine.engine import Engine
from dozor.settings import Settings
from dozor.store import monitors as store
from tests.fakes import ScriptedCheck


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings.model_validate({
        "data_dir": tmp_path, "database_url": database_url, "flush_interval": 0.05,
        "reload_interval": 0.1, "retention_interval": 3600,
    })


@pytest.fixture
async def running(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Engine]:
    ScriptedCheck.up.clear()
    ScriptedCheck.runs.clear()
    dozor = Engine(settings, engine)
    await dozor.start()
    yield dozor
    await dozor.stop()


async def add_monitor(engine: AsyncEngine, **fields: Any) -> int:
    data = {"kind": "scripted", "interval": "1s", "retry-interval": "1s"} | fields
    data.setdefault("key", data["name"])
    async with engine.begin() as connection:
        return await store.create_monitor(connection, parse_monitor(data))


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll until ``check`` is true; fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.05)
