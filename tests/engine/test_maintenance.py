"""Inside a maintenance window a failing monitor opens no incident, its results are marked
and left out of uptime; after the window it is judged again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.config.specs import MaintenanceSpec
from dozor.core.types import ResultStatus
from dozor.engine.engine import Engine
from dozor.store import monitors as store
from dozor.store import queries
from dozor.store import tables as t
from tests.engine.conftest import add_monitor, eventually
from tests.fakes import ScriptedCheck


async def test_a_window_silences_an_outage_and_keeps_it_out_of_uptime(
    running: Engine, engine: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    window = MaintenanceSpec(name="deploy", start=now - timedelta(minutes=1),
                             end=now + timedelta(hours=1), monitors=["api"])
    async with engine.begin() as connection:
        await store.save_maintenance(connection, window)
    monitor_id = await add_monitor(engine, name="api", **{"confirm-after": 1})
    ScriptedCheck.up["api"] = False
    await running.reload()
    await eventually(lambda: _results(engine, monitor_id, 3))
    await running.writer.flush()
    async with engine.connect() as connection:
        state = await connection.scalar(select(t.monitor_state.c.state))
        incidents = (await connection.execute(select(t.incidents))).all()
        statuses = set((await connection.execute(select(t.results.c.status))).scalars())
        figures = await queries.uptime(connection, monitor_id, now - timedelta(hours=1),
                                       now + timedelta(hours=1))
    assert state == "maintenance" and incidents == []
    assert statuses == {ResultStatus.MAINTENANCE}
    assert figures.checks == 0

    async with engine.begin() as connection:  # the window ends early: judged again
        await store.save_maintenance(connection, window.model_copy(
            update={"end": datetime.now(UTC)}))
    await eventually(lambda: _state_is(engine, "down"))


async def _results(engine: AsyncEngine, monitor_id: int, at_least: int) -> bool:
    async with engine.connect() as connection:
        found = (await connection.execute(select(t.results.c.at).where(
            t.results.c.monitor_id == monitor_id))).all()
    return len(found) >= at_least


async def _state_is(engine: AsyncEngine, state: str) -> bool:
    async with engine.connect() as connection:
        return await connection.scalar(select(t.monitor_state.c.state)) == state
