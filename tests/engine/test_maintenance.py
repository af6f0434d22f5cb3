"""Inside a maintenance window a failing monitor opens no incident, its results are marked
and left out of uptime; after the window it is judged again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.config.specs import MaintenanceSpec
from dozor.core.maintenance import Window
from dozor.core.types import ErrorCode, Outcome, ResultStatus
from dozor.engine.engine import Engine
from dozor.engine.evaluator import Evaluator
from dozor.engine.model import ActiveMonitor
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


def _monitor(monitor_id: int, org_id: int, name: str) -> ActiveMonitor:
    return ActiveMonitor.from_row(SimpleNamespace(
        id=monitor_id, org_id=org_id, name=name, kind="scripted", config={"key": name},
        tags=["web"], interval_ms=1000, retry_interval_ms=1000, timeout_ms=500,
        confirm_after=1, recover_after=1, paused=False, revision=1,
        created_at=datetime.now(UTC), push_token=None))


def test_a_window_covers_only_monitors_of_its_own_organisation() -> None:
    now = datetime.now(UTC)
    evaluator = Evaluator()
    everything = Window(name="all", starts_at=now - timedelta(minutes=1),
                        ends_at=now + timedelta(hours=1), all_monitors=True)
    by_name = Window(name="api", starts_at=now - timedelta(minutes=1),
                     ends_at=now + timedelta(hours=1), monitor_names=frozenset({"api"}))
    evaluator.set_windows([(2, everything), (2, by_name)])
    ours, theirs = _monitor(1, 1, "api"), _monitor(2, 2, "api")
    failing = Outcome.down(ErrorCode.CONNECTION_REFUSED, "refused", 1.0)
    assert evaluator.evaluate(ours, failing, now).status is ResultStatus.DOWN
    assert evaluator.evaluate(theirs, failing, now).status is ResultStatus.MAINTENANCE
