"""A monitor checked from several locations, taken up by an engine that starts in the
middle of an outage (a restart, or a node taking over a dead one's monitors): each
location's tracker is rebuilt from its stored recent results, so the quorum counts the
locations at once and one location seeing the monitor up does not close the incident;
and a regional problem stored before the start is what the next decision is compared
with, so its clearing is stored and told to open pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.core.types import ErrorCode, MonitorState, Outcome, ResultStatus
from dozor.engine.engine import Engine, ensure_location
from dozor.engine.ingest import RegionalChange, result_row
from dozor.settings import Settings
from dozor.store import tables as t
from tests.engine.conftest import add_monitor

DOWN = Outcome.down(ErrorCode.CONNECTION_REFUSED, "refused", 1.0)


async def test_a_quorum_counts_its_locations_at_once_after_a_start(
        settings: Settings, engine: AsyncEngine) -> None:
    shop = await add_monitor(engine, name="shop", interval="1m", locations=["local", "fra",
                                                                            "waw"])
    now = datetime.now(UTC)
    ids = {name: await ensure_location(engine, name) for name in ("local", "fra")}
    async with engine.begin() as connection:
        incident = (await connection.execute(insert(t.incidents).values(
            org_id=1, monitor_id=shop, opened_at=now - timedelta(minutes=3), cause="refused",
            location_id=ids["local"]).returning(t.incidents.c.id))).scalar_one()
        await connection.execute(update(t.monitor_state).where(
            t.monitor_state.c.monitor_id == shop).values(
            state=MonitorState.DOWN.value, since=now - timedelta(minutes=3), failures=2,
            incident_id=incident, last_checked_at=now - timedelta(seconds=20)))
        # Three failures each (confirm-after 3) in the last minute, here and at fra.
        await connection.execute(insert(t.results), [
            result_row(shop, int((now - timedelta(seconds=s)).timestamp() * 1000),
                       ids[name], ResultStatus.DOWN, DOWN)
            for name in ("local", "fra") for s in (60, 40, 20)])
    dozor = Engine(settings, engine)
    await dozor.start()
    try:
        views = dozor.evaluator.locations[shop]
        assert {name: tracker.state for name, (tracker, _) in views.items()} == {
            "local": MonitorState.DOWN, "fra": MonitorState.DOWN}
        # waw sees it up: still 2 of 3 down, so the outage goes on.
        assert dozor.evaluate_remote(shop, "waw", Outcome.up(5.0), datetime.now(UTC))
        assert dozor.evaluator.state(shop) is MonitorState.DOWN
    finally:
        await dozor.stop()
    async with engine.connect() as connection:
        closed = await connection.scalar(select(t.incidents.c.closed_at)
                                         .where(t.incidents.c.id == incident))
    assert closed is None


async def test_a_stored_regional_problem_clears_after_a_start(
        settings: Settings, engine: AsyncEngine) -> None:
    shop = await add_monitor(engine, name="shop", interval="1m", locations=["fra", "waw"],
                             **{"confirm-after": 1})
    async with engine.begin() as connection:
        await connection.execute(update(t.monitor_state).where(
            t.monitor_state.c.monitor_id == shop).values(
            state=MonitorState.UP.value, since=datetime.now(UTC), regional=["fra"]))
    dozor = Engine(settings, engine)
    handed: list[RegionalChange] = []
    dozor.regional_committed.append(handed.extend)
    await dozor.start()
    try:
        # fra sees it up again: the problem the page shows clears, there and live.
        assert dozor.evaluate_remote(shop, "fra", Outcome.up(5.0), datetime.now(UTC))
        await dozor.writer.flush()
    finally:
        await dozor.stop()
    async with engine.connect() as connection:
        stored = await connection.scalar(select(t.monitor_state.c.regional)
                                         .where(t.monitor_state.c.monitor_id == shop))
    assert stored is None
    assert handed == [RegionalChange(shop, 1, ())]
