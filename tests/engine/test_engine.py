"""The engine end to end on both databases: checks run, states change, incidents open and
close, results and rollups are stored, and configuration changes apply without restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.engine.engine import Engine
from dozor.engine.rollup_job import roll_up
from dozor.engine.transitions import StateChange
from dozor.privacy import restriction
from dozor.store import monitors as store
from dozor.store import queries
from dozor.store import tables as t
from tests.engine.conftest import add_monitor, eventually
from tests.fakes import ScriptedCheck


async def state_of(engine: AsyncEngine, monitor_id: int) -> str:
    async with engine.connect() as connection:
        query = select(t.monitor_state.c.state).where(t.monitor_state.c.monitor_id == monitor_id)
        return str(await connection.scalar(query))


async def rows(engine: AsyncEngine, table: t.Table, **where: Any) -> list[Any]:
    query = select(table).where(*(table.c[k] == v for k, v in where.items()))
    async with engine.connect() as connection:
        return list((await connection.execute(query)).all())


async def test_a_failing_target_goes_pending_then_down_and_recovers(
    running: Engine, engine: AsyncEngine
) -> None:
    monitor_id = await add_monitor(engine, name="web", **{"confirm-after": 2})
    await running.reload()
    await eventually(lambda: _is(engine, monitor_id, "up"))

    ScriptedCheck.up["web"] = False
    await eventually(lambda: _is(engine, monitor_id, "down"))
    [incident] = await rows(engine, t.incidents, monitor_id=monitor_id)
    assert incident.closed_at is None and "refused" in incident.cause

    ScriptedCheck.up["web"] = True
    await eventually(lambda: _is(engine, monitor_id, "up"))
    [incident] = await rows(engine, t.incidents, monitor_id=monitor_id)
    assert incident.closed_at is not None and incident.resolution == "recovered"
    changes = [(c.previous, c.current) for c in
               sorted(await rows(engine, t.state_changes, monitor_id=monitor_id),
                      key=lambda c: c.id)]
    assert changes == [("unknown", "up"), ("up", "pending"), ("pending", "down"),
                       ("down", "up")]


async def test_results_and_rollups_are_stored_with_the_location(
    running: Engine, engine: AsyncEngine
) -> None:
    monitor_id = await add_monitor(engine, name="api")
    await running.reload()
    await eventually(lambda: _has_results(engine, monitor_id, 2))
    await running.writer.flush()
    results = await rows(engine, t.results, monitor_id=monitor_id)
    [location] = await rows(engine, t.locations, name="local")
    assert {r.location_id for r in results} == {location.id}
    assert all(r.status == 1 and r.latency_ms == 5 for r in results)
    # Details are kept for failures and state changes only: here the first (unknown -> up).
    assert [r.detail is not None for r in results] == [True] + [False] * (len(results) - 1)
    # The open hour is read raw; once it has ended, the roll-up job makes its rollup.
    async with engine.connect() as connection:
        now = datetime.now(UTC)
        figures = await queries.uptime(connection, monitor_id, now - timedelta(hours=1), now)
    assert figures.checks == len(results) and figures.uptime == 1.0
    assert await roll_up(engine, now + timedelta(hours=2)) >= 1
    [hourly] = await rows(engine, t.rollups_hourly, monitor_id=monitor_id)
    assert hourly.checks == len(results) and hourly.latency_min == 5


async def test_a_listener_writes_in_the_transaction_of_the_state_change(
    running: Engine, engine: AsyncEngine
) -> None:
    seen: list[StateChange] = []

    async def listener(connection: AsyncConnection, change: StateChange) -> None:
        # What the alert router will do: write its outbox rows beside the change.
        count = await connection.scalar(select(func.count()).select_from(t.state_changes)
                                        .where(t.state_changes.c.monitor_id == change.monitor_id))
        assert count and count >= 1  # the change itself is visible: same transaction
        seen.append(change)

    running.writer.listeners.append(listener)
    monitor_id = await add_monitor(engine, name="db", **{"confirm-after": 1})
    ScriptedCheck.up["db"] = False
    await running.reload()
    await eventually(lambda: _is(engine, monitor_id, "down"))
    assert [c.current.value for c in seen] == ["down"]
    assert seen[0].incident_id is not None


async def test_pausing_stops_checks_and_resuming_restarts_them(
    running: Engine, engine: AsyncEngine
) -> None:
    monitor_id = await add_monitor(engine, name="paused")
    await running.reload()
    await eventually(lambda: _is(engine, monitor_id, "up"))
    async with engine.begin() as connection:
        await store.set_paused(connection, monitor_id, True)
    await eventually(lambda: _is(engine, monitor_id, "paused"))
    runs = ScriptedCheck.runs["paused"]
    await running.writer.flush()
    assert monitor_id not in running.scheduler
    assert ScriptedCheck.runs["paused"] == runs
    async with engine.begin() as connection:
        await store.set_paused(connection, monitor_id, False)
    await eventually(lambda: _is(engine, monitor_id, "up"))


async def test_a_restricted_organisation_is_not_checked_until_it_lifts_it(
    running: Engine, engine: AsyncEngine
) -> None:
    monitor_id = await add_monitor(engine, name="frozen")
    await running.reload()
    await eventually(lambda: _is(engine, monitor_id, "up"))
    async with engine.begin() as connection:
        await restriction.restrict(connection, 1, now=datetime.now(UTC))
    await eventually(lambda: _is(engine, monitor_id, "paused"))
    runs = ScriptedCheck.runs["frozen"]
    await running.writer.flush()
    assert monitor_id not in running.scheduler and ScriptedCheck.runs["frozen"] == runs
    async with engine.begin() as connection:  # the owner's own flag is untouched
        paused = await connection.scalar(select(t.monitors.c.paused))
    assert paused is False
    async with engine.begin() as connection:
        await restriction.lift(connection, 1)
    await eventually(lambda: _is(engine, monitor_id, "up"))


async def test_a_removed_monitor_stops_being_checked(running: Engine, engine: AsyncEngine) -> None:
    monitor_id = await add_monitor(engine, name="gone")
    await running.reload()
    await eventually(lambda: _has_results(engine, monitor_id, 1))
    async with engine.begin() as connection:
        await store.delete_monitor(connection, monitor_id)
    await eventually(lambda: _async(monitor_id not in running.monitors))
    assert monitor_id not in running.scheduler
    await running.writer.flush()  # nothing queued for the monitor breaks the batch


async def test_a_restart_keeps_the_state_and_the_open_incident(
    running: Engine, engine: AsyncEngine
) -> None:
    monitor_id = await add_monitor(engine, name="restart", **{"confirm-after": 1,
                                                               "interval": "2s"})
    ScriptedCheck.up["restart"] = False
    await running.reload()
    await eventually(lambda: _is(engine, monitor_id, "down"))
    await running.stop()
    again = Engine(running.settings, engine)
    await again.start()
    try:
        assert again.evaluator.trackers[monitor_id].incident_open
        ScriptedCheck.up["restart"] = True
        await eventually(lambda: _is(engine, monitor_id, "up"))
        incidents = await rows(engine, t.incidents, monitor_id=monitor_id)
        assert len(incidents) == 1 and incidents[0].closed_at is not None
    finally:
        await again.stop()
        await running.start()  # the fixture stops it again


async def _is(engine: AsyncEngine, monitor_id: int, state: str) -> bool:
    return await state_of(engine, monitor_id) == state


async def _has_results(engine: AsyncEngine, monitor_id: int, at_least: int) -> bool:
    return len(await rows(engine, t.results, monitor_id=monitor_id)) >= at_least


async def _async(value: bool) -> bool:
    return value
