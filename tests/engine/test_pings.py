"""Heartbeat pings on both databases: an answered ping is a stored ping, pings that arrive
together share one commit, and a ping the database refuses is refused to the job too."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.config.specs import parse_monitor
from dozor.core.types import MonitorState
from dozor.engine.engine import Engine
from dozor.engine.pings import PingNotStored
from dozor.store import monitors as store
from dozor.store import tables as t
from tests.engine.conftest import eventually


async def heartbeat(engine: AsyncEngine, name: str, **fields: Any) -> tuple[int, str]:
    spec = parse_monitor({"name": name, "kind": "heartbeat", "period": "1h"} | fields)
    async with engine.begin() as connection:
        monitor_id = await store.create_monitor(connection, spec)
        token = (await store.find_monitor(connection, name)).push_token
    assert token
    return monitor_id, token


async def stored(engine: AsyncEngine, monitor_id: int) -> Any:
    """What a restarted engine would read: a fresh connection, committed rows only."""
    s = t.monitor_state.c
    async with engine.connect() as connection:
        return (await connection.execute(
            select(s.last_ping_at, s.last_start_at, s.last_ping_kind)
            .where(s.monitor_id == monitor_id))).one()


async def test_an_answered_ping_is_already_stored(running: Engine, engine: AsyncEngine) -> None:
    monitor_id, token = await heartbeat(engine, "backup")
    await running.reload()
    assert await running.record_ping(token, "start")
    row = await stored(engine, monitor_id)
    assert row.last_ping_kind == "start" and row.last_start_at is not None
    assert await running.record_ping(token, "fail")
    row = await stored(engine, monitor_id)
    assert row.last_ping_kind == "fail"
    assert row.last_ping_at == running.signals[monitor_id].last_ping_at
    assert row.last_start_at == running.signals[monitor_id].last_start_at


async def test_pings_that_arrive_together_share_one_commit(
        running: Engine, engine: AsyncEngine) -> None:
    monitors = [await heartbeat(engine, f"job {i}") for i in range(20)]
    await running.reload()
    before = running.pings.commits
    answers = await asyncio.gather(*(running.record_ping(token, kind)
                                     for _, token in monitors for kind in ("start", "success")))
    assert all(answers)
    # The first ping's commit, then one for everything that arrived meanwhile.
    assert running.pings.commits - before <= 2
    for monitor_id, _ in monitors:
        row = await stored(engine, monitor_id)
        assert row.last_ping_kind == "success" and row.last_start_at is not None


async def test_a_ping_the_database_refuses_is_refused_and_stored_with_the_next(
        running: Engine, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    first, first_token = await heartbeat(engine, "first")
    second, second_token = await heartbeat(engine, "second")
    await running.reload()
    write = running.pings._write

    async def broken(ids: set[int]) -> None:
        raise OSError("database unreachable")
    monkeypatch.setattr(running.pings, "_write", broken)
    with pytest.raises(PingNotStored, match="unreachable"):
        await running.record_ping(first_token, "success")
    assert (await stored(engine, first)).last_ping_at is None

    monkeypatch.setattr(running.pings, "_write", write)
    assert await running.record_ping(second_token, "success")
    assert (await stored(engine, second)).last_ping_kind == "success"
    assert (await stored(engine, first)).last_ping_kind == "success"  # retried with it


async def test_a_monitor_that_is_no_longer_a_heartbeat_takes_no_pings(
        running: Engine, engine: AsyncEngine) -> None:
    monitor_id, token = await heartbeat(engine, "cron")
    await running.reload()
    assert await running.record_ping(token)
    spec = parse_monitor({"name": "cron", "kind": "tcp", "host": "127.0.0.1", "port": 9})
    async with engine.begin() as connection:
        await store.update_monitor(connection, monitor_id, spec)
    await running.reload()
    assert not await running.record_ping(token)


async def test_only_a_ping_that_can_change_the_state_runs_a_check_at_once(
        running: Engine, engine: AsyncEngine) -> None:
    monitor_id, token = await heartbeat(engine, "sync", interval="1h")
    await running.reload()

    def checks() -> int:
        stats = running.stats.kinds.get("heartbeat")
        return stats.checks if stats else 0

    async def state_is(state: MonitorState) -> bool:
        return running.evaluator.state(monitor_id) is state

    assert await running.record_ping(token)  # unknown: checked now
    await eventually(lambda: state_is(MonitorState.UP))
    checked = checks()
    for _ in range(3):  # up, and a success keeps it up: the scheduled check will see them
        assert await running.record_ping(token)
    assert await running.record_ping(token, "start")
    await asyncio.sleep(0.3)
    assert checks() == checked
    assert await running.record_ping(token, "fail")
    await eventually(lambda: state_is(MonitorState.DOWN))
    assert await running.record_ping(token)  # down: recovers at once
    await eventually(lambda: state_is(MonitorState.UP))


async def test_a_job_that_hangs_up_does_not_cancel_the_commit_of_the_others(
        running: Engine, engine: AsyncEngine) -> None:
    gone, gone_token = await heartbeat(engine, "impatient")
    stays, stays_token = await heartbeat(engine, "patient")
    await running.reload()
    impatient = asyncio.ensure_future(running.record_ping(gone_token))
    patient = asyncio.ensure_future(running.record_ping(stays_token))
    await asyncio.sleep(0)  # both joined the commit
    impatient.cancel()
    assert await patient
    assert (await stored(engine, stays)).last_ping_kind == "success"
    assert (await stored(engine, gone)).last_ping_kind == "success"
