"""The result writer in batches: many state changes at once, and incidents that open and
close inside one batch, all in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.core.statemachine import Policy, Tracker
from dozor.core.types import ErrorCode, Outcome
from dozor.core.types import MonitorState as S
from dozor.engine.engine import ensure_location
from dozor.engine.evaluator import Evaluator, Observation
from dozor.engine.ingest import RegionalChange, ResultWriter
from dozor.engine.model import ActiveMonitor
from dozor.store import monitors as store
from dozor.store import tables as t
from tests.engine.conftest import add_monitor

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


async def active(engine: AsyncEngine, count: int) -> list[ActiveMonitor]:
    for i in range(count):
        await add_monitor(engine, name=f"m{i}", **{"confirm-after": 1})
    async with engine.connect() as connection:
        return [ActiveMonitor.from_row(r) for r in await store.list_monitors(connection)]


async def test_a_mass_outage_is_one_batch_with_an_incident_each(engine: AsyncEngine) -> None:
    monitors = await active(engine, 50)
    writer = ResultWriter(engine, await ensure_location(engine, "local"))
    evaluator = Evaluator()
    down = Outcome.down(ErrorCode.TIMEOUT, "timed out")
    for minute in range(2):
        for monitor in monitors:
            writer.add(evaluator.evaluate(monitor, down, T0 + timedelta(minutes=minute)))
    await writer.flush()
    async with engine.connect() as connection:
        incidents = (await connection.execute(select(t.incidents))).all()
        states = set((await connection.execute(select(t.monitor_state.c.state))).scalars())
        linked = (await connection.execute(select(t.monitor_state.c.incident_id))).scalars()
    assert len(incidents) == 50 and states == {"down"}
    assert sorted(linked) == sorted(i.id for i in incidents)
    assert len(writer.open_incidents) == 50


async def test_an_incident_can_open_and_close_within_one_batch(engine: AsyncEngine) -> None:
    [monitor] = await active(engine, 1)
    writer = ResultWriter(engine, await ensure_location(engine, "local"))
    evaluator = Evaluator()
    evaluator.trackers[monitor.id] = Tracker()
    outcomes = [Outcome.up(1.0), Outcome.down(ErrorCode.TIMEOUT, "t"), Outcome.up(1.0),
                Outcome.down(ErrorCode.TIMEOUT, "t")]
    for minute, outcome in enumerate(outcomes):
        writer.add(evaluator.evaluate(monitor, outcome, T0 + timedelta(minutes=minute)))
    await writer.flush()
    async with engine.connect() as connection:
        incidents = (await connection.execute(select(t.incidents).order_by(t.incidents.c.id))
                     ).all()
        changes = (await connection.execute(select(t.state_changes)
                                            .order_by(t.state_changes.c.id))).all()
        state = (await connection.execute(select(t.monitor_state))).one()
    assert [i.closed_at is None for i in incidents] == [False, True]
    assert [(c.current, c.incident_id) for c in changes] == [
        ("up", None), ("down", incidents[0].id), ("up", incidents[0].id),
        ("down", incidents[1].id)]
    assert state.incident_id == incidents[1].id
    assert monitor.policy == Policy(confirm_after=1)


async def writer_failing_once(engine: AsyncEngine) -> tuple[ActiveMonitor, ResultWriter]:
    """One monitor, and a writer whose first transaction fails in a listener (as an
    outbox that is unavailable would make it)."""
    [monitor] = await active(engine, 1)
    writer = ResultWriter(engine, await ensure_location(engine, "local"))
    failures = [RuntimeError("the outbox is unavailable")]

    async def flaky_listener(connection: object, change: object) -> None:
        if failures:
            raise failures.pop()

    writer.listeners.append(flaky_listener)
    return monitor, writer


async def test_a_failed_batch_is_retried_without_counting_twice(engine: AsyncEngine) -> None:
    monitor, writer = await writer_failing_once(engine)
    evaluator = Evaluator()
    for minute in range(3):  # the first result is a change (unknown -> up): the listener runs
        writer.add(evaluator.evaluate(monitor, Outcome.up(10.0), T0 + timedelta(minutes=minute)))
    with pytest.raises(RuntimeError, match="outbox"):
        await writer.flush()
    assert writer.queued == 3  # nothing lost
    await writer.flush()
    async with engine.connect() as connection:
        results = (await connection.execute(select(t.results))).all()
        changes = (await connection.execute(select(t.state_changes))).all()
    assert len(results) == 3 and len(changes) == 1


async def test_a_retried_batch_keeps_the_times_it_was_measured_at(engine: AsyncEngine) -> None:
    monitor, writer = await writer_failing_once(engine)
    evaluator = Evaluator()
    times = [T0 + timedelta(minutes=m) for m in range(3)]
    for moment in times:
        writer.add(evaluator.evaluate(monitor, Outcome.up(10.0), moment))
    with pytest.raises(RuntimeError):
        await writer.flush()
    await writer.flush()
    async with engine.connect() as connection:
        stored = list((await connection.execute(select(t.results.c.at)
                                                .order_by(t.results.c.at))).scalars())
    assert stored == [int(moment.timestamp() * 1000) for moment in times]


async def test_one_monitor_that_cannot_be_stored_does_not_stop_the_others(
    engine: AsyncEngine
) -> None:
    healthy, broken = await active(engine, 2)
    writer = ResultWriter(engine, await ensure_location(engine, "local"))
    writer.open_incidents[broken.id] = 999_999  # a dangling incident: its state row can't be saved
    evaluator = Evaluator()
    for monitor in (healthy, broken):
        evaluator.trackers[monitor.id] = Tracker(state=S.DOWN, incident_open=True)
        writer.add(evaluator.evaluate(monitor, Outcome.down(ErrorCode.TIMEOUT, "t"), T0))
    await writer.flush()
    assert writer.queued == 0  # nothing left to block every later batch
    async with engine.connect() as connection:
        stored = set((await connection.execute(select(t.results.c.monitor_id))).scalars())
    assert stored == {healthy.id}
    assert broken.id not in writer.open_incidents


def test_the_queue_is_bounded_while_the_database_is_away(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from dozor.engine import ingest

    monkeypatch.setattr(ingest, "MAX_QUEUED", 5)
    writer = ResultWriter(None, 1)  # type: ignore[arg-type]  # never flushed here
    monitor = ActiveMonitor.__new__(ActiveMonitor)
    monitor.id = 1
    evaluator_tracker = Tracker()
    for minute in range(8):
        writer.add(Observation(monitor, T0 + timedelta(minutes=minute), evaluator_tracker,
                               Outcome.up(1.0)))
    assert writer.queued == 5
    assert writer.oldest_unwritten() == int((T0 + timedelta(minutes=3)).timestamp() * 1000)


class Handed:
    """A ``regional_committed`` callback: what it was given, in order with the commits of
    its writer's engine (``moments``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.changes: list[tuple[str, ...]] = []
        self.moments: list[str] = []
        event.listen(engine.sync_engine, "commit", lambda _: self.moments.append("commit"))

    def __call__(self, changes: Sequence[RegionalChange]) -> None:
        self.changes += [change.regional for change in changes]
        self.moments.append("handed")


async def test_a_regional_change_is_handed_over_once_after_its_commit(
        engine: AsyncEngine) -> None:
    [monitor] = await active(engine, 1)
    writer = ResultWriter(engine, await ensure_location(engine, "local"))
    handed = Handed(engine)
    writer.regional_committed.append(handed)
    tracker = Tracker(state=S.UP)
    for minute, regional in enumerate([("fra",), ("fra",), ("fra", "waw"), (), ()]):
        writer.add(Observation(monitor, T0 + timedelta(minutes=minute), tracker,
                               regional=regional, remote=True))
        await writer.flush()
    assert handed.changes == [("fra",), ("fra", "waw"), ()]  # repeats are no change
    assert handed.moments == ["commit", "handed", "commit", "commit", "handed", "commit",
                              "handed", "commit"]
    assert writer.regional == {}
    async with engine.connect() as connection:
        assert await connection.scalar(select(t.monitor_state.c.regional)) is None


async def test_a_batch_hands_over_the_regional_problem_it_ends_with(
        engine: AsyncEngine) -> None:
    [monitor] = await active(engine, 1)
    writer = ResultWriter(engine, await ensure_location(engine, "local"))
    handed = Handed(engine)
    writer.regional_committed.append(handed)
    tracker = Tracker(state=S.UP)
    for minute, regional in enumerate([("fra",), ("waw",), ("fra", "waw")]):
        writer.add(Observation(monitor, T0 + timedelta(minutes=minute), tracker,
                               regional=regional, remote=True))
    await writer.flush()
    assert handed.changes == [("fra", "waw")] and writer.regional == {monitor.id: ("fra", "waw")}


async def test_a_batch_whose_commit_fails_hands_over_nothing_until_it_commits(
        engine: AsyncEngine) -> None:
    [monitor] = await active(engine, 1)
    writer = ResultWriter(engine, await ensure_location(engine, "local"))
    handed = Handed(engine)
    writer.regional_committed.append(handed)
    failures = [RuntimeError("the database went away")]

    def fail_once(_: object) -> None:  # at the commit, after every statement ran
        if failures:
            raise failures.pop()
    event.listen(engine.sync_engine, "commit", fail_once)
    writer.add(Observation(monitor, T0, Tracker(state=S.UP), regional=("fra",), remote=True))
    with pytest.raises(RuntimeError, match="went away"):
        await writer.flush()
    assert handed.changes == [] and writer.regional == {}
    await writer.flush()
    assert handed.changes == [("fra",)] and writer.regional == {monitor.id: ("fra",)}
