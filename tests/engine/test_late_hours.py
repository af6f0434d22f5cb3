"""Hours rolled up again when results arrive after them: recorded by whoever stores the
results, made again by the rollup job (days too), safe with two processes at once and
with a writer storing while the job rolls up, and never from an hour the prune may have
reached."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.core.rollups import HOUR
from dozor.core.types import Outcome, ResultStatus
from dozor.engine.engine import ensure_location
from dozor.engine.evaluator import Evaluator
from dozor.engine.ingest import ResultWriter
from dozor.engine.model import ActiveMonitor
from dozor.engine.rollup_job import roll_late, roll_up
from dozor.store import late_hours
from dozor.store import monitors as store
from dozor.store import tables as t
from dozor.store.db import create_engine, write_transaction
from dozor.store.queries import ROLLED_UP
from tests.engine.conftest import add_monitor
from tests.engine.test_rollup_job import DAY0, store_results, table

START = int(DAY0.timestamp())


def at(hours: float) -> datetime:
    return DAY0 + timedelta(hours=hours)


async def store_late_in(connection: AsyncConnection, monitor_id: int, when: datetime,
                        now: datetime, status: ResultStatus = ResultStatus.UP) -> int:
    """Store one result as a writer does: the row, then its hour recorded if late."""
    ms = int(when.timestamp() * 1000)
    await connection.execute(insert(t.results), [{
        "monitor_id": monitor_id, "at": ms, "location_id": 1, "status": int(status),
        "latency_ms": 500}])
    return await late_hours.mark(connection, [(monitor_id, ms, 1)], now)


async def store_late(engine: AsyncEngine, monitor_id: int, when: datetime, now: datetime,
                     status: ResultStatus = ResultStatus.UP) -> int:
    async with engine.begin() as connection:
        return await store_late_in(connection, monitor_id, when, now, status)


async def waiting(engine: AsyncEngine) -> list[tuple[int, int, int]]:
    c = t.late_hours.c
    async with engine.connect() as connection:
        return [(b, m, loc) for b, m, loc in await connection.execute(
            select(c.bucket, c.monitor_id, c.location_id).order_by(c.bucket))]


async def test_a_late_hour_is_made_again_and_its_day_once_the_day_is_rolled_up(
        engine: AsyncEngine) -> None:
    monitor_id = await add_monitor(engine, name="m")
    await store_results(engine, monitor_id, 3)
    assert await roll_up(engine, at(3.1)) == 3
    # Results of hour 1 stored now, and of hour 3 (not rolled up yet: not recorded).
    assert await store_late(engine, monitor_id, at(1.5) + timedelta(seconds=1), at(3.2),
                            ResultStatus.DOWN) == 1
    assert await store_late(engine, monitor_id, at(3.5) + timedelta(seconds=1), at(4)) == 0
    assert await waiting(engine) == [(START + HOUR, monitor_id, 1)]
    assert await roll_up(engine, at(3.2)) == 0
    assert (await table(engine, t.rollups_hourly))[1] == (START + HOUR, 60, 58)
    assert await waiting(engine) == []
    # The day is rolled up later, from its hours: the late result is in it.
    await store_results(engine, monitor_id, 21, first=3)
    assert await roll_up(engine, at(24.1)) == 21
    assert await table(engine, t.rollups_daily) == [(START, 24 * 59 + 2, 24 * 58 + 1)]
    # A late result in that rolled-up day: the hour and the day are made again.
    await store_late(engine, monitor_id, at(5.5) + timedelta(seconds=1), at(24.2))
    assert await roll_up(engine, at(24.2)) == 0
    assert await table(engine, t.rollups_daily) == [(START, 24 * 59 + 3, 24 * 58 + 2)]


async def test_a_late_hour_the_prune_may_have_reached_is_left_as_it_was(
        engine: AsyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    monitor_id = await add_monitor(engine, name="m")
    await store_results(engine, monitor_id, 3)
    await roll_up(engine, at(3.1))
    before = await table(engine, t.rollups_hourly)
    for hour in (1, 2):
        await store_late(engine, monitor_id, at(hour + 0.5) + timedelta(seconds=1), at(3.1))
    # Raw results kept two hours: at 03:06 the prune may have taken 01:06 and before, so
    # hour 1 would be made from part of its results; hour 2 is whole.
    with caplog.at_level(logging.WARNING):
        await roll_up(engine, at(3.1), keep_raw=timedelta(hours=2))
    after = await table(engine, t.rollups_hourly)
    assert after[1] == before[1]
    assert after[2] == (START + 2 * HOUR, before[2][1] + 1, before[2][2] + 1)
    assert await waiting(engine) == []
    assert "1 late hours" in caplog.text and "pruned" in caplog.text


async def test_a_result_stored_while_the_job_reads_its_hour_is_in_its_rollup(
        engine: AsyncEngine, database_url: str) -> None:
    monitor_id = await add_monitor(engine, name="m")
    await store_results(engine, monitor_id, 2)
    assert await roll_up(engine, at(1.1)) == 1  # the mark is at hour 1
    other = create_engine(database_url)  # another process's writer (a probe's results)
    try:
        async with other.begin() as writer:
            # Hour 1 is not rolled up yet: nothing to record...
            assert await store_late_in(writer, monitor_id, at(1.5) + timedelta(seconds=1),
                                       at(2.1)) == 0
            job = asyncio.create_task(roll_up(engine, at(2.1)))
            await asyncio.sleep(0.5)
            # ... and the job, having read the hour, waits for the writer to finish.
            assert not job.done()
        assert await job == 1
    finally:
        await other.dispose()
    assert (await table(engine, t.rollups_hourly))[1] == (START + HOUR, 60, 59)
    assert await waiting(engine) == []


async def test_a_writer_storing_an_hour_the_job_is_rolling_up_records_it(
        engine: AsyncEngine, database_url: str) -> None:
    monitor_id = await add_monitor(engine, name="m")
    await store_results(engine, monitor_id, 2)
    assert await roll_up(engine, at(1.1)) == 1
    other = create_engine(database_url)
    try:
        async with write_transaction(engine) as job:  # the job, rolling hour 1 up
            assert await late_hours.hold(job) == START + HOUR
            writer = asyncio.create_task(store_late(
                other, monitor_id, at(1.5) + timedelta(seconds=1), at(2.1)))
            await asyncio.sleep(0.5)
            assert not writer.done()  # it waits for the job's transaction ...
            await job.execute(update(t.meta).where(t.meta.c.key == ROLLED_UP)
                              .values(value=START + 2 * HOUR))
        assert await writer == 1  # ... then finds hour 1 rolled up: recorded as late
    finally:
        await other.dispose()
    assert await waiting(engine) == [(START + HOUR, monitor_id, 1)]


async def test_two_processes_rolling_up_at_once_do_each_hour_once(
        engine: AsyncEngine, database_url: str) -> None:
    monitor_id = await add_monitor(engine, name="m")
    await store_results(engine, monitor_id, 26)
    other = create_engine(database_url)
    try:
        done = await asyncio.gather(roll_up(engine, at(25.5)), roll_up(other, at(25.5)))
        assert sum(done) == 25
        for hour in range(5):
            await store_late(engine, monitor_id, at(hour + 0.5) + timedelta(seconds=1),
                             at(25.5))
        again = await asyncio.gather(roll_late(engine, at(25.5)), roll_late(other, at(25.5)))
        assert sum(again) == 5
    finally:
        await other.dispose()
    hourly = await table(engine, t.rollups_hourly)
    assert hourly[:6] == [(START + h * HOUR, 60, 59) for h in range(5)] + [
        (START + 5 * HOUR, 59, 58)]
    assert len(hourly) == 25
    assert await table(engine, t.rollups_daily) == [(START, 24 * 59 + 5, 24 * 58 + 5)]


async def test_the_result_writer_records_what_it_stores_behind_the_mark(
        engine: AsyncEngine) -> None:
    # A server node writing its queue after a database outage, while another node's job
    # rolled those hours up.
    monitor_id = await add_monitor(engine, name="m", **{"confirm-after": 1})
    location = await ensure_location(engine, "local")
    await store_results(engine, monitor_id, 3)
    await roll_up(engine, at(3.1))
    async with engine.connect() as connection:
        [monitor] = [ActiveMonitor.from_row(r) for r in await store.list_monitors(connection)]
    writer = ResultWriter(engine, location)
    evaluator = Evaluator()
    writer.add(evaluator.evaluate(monitor, Outcome.up(40.0), at(2.5) + timedelta(seconds=1)))
    await writer.flush()
    assert await waiting(engine) == [(START + 2 * HOUR, monitor_id, location)]
    await roll_up(engine, at(3.1))
    assert (await table(engine, t.rollups_hourly))[2] == (START + 2 * HOUR, 60, 59)
    assert await waiting(engine) == []
