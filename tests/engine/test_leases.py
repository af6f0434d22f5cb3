"""One server node's leases under failure, in process on PostgreSQL: a node whose monitor
was taken while its writes waited stores its results but not its state; a lease that
lapsed for a moment, or a step that failed half-way, never leaves a leased monitor
unchecked; a node whose rebalancing is slow keeps its heartbeat, and one judged dead
stops checking and joins again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.config.specs import parse_monitor
from dozor.core.types import ErrorCode, MonitorState, Outcome
from dozor.engine import restore
from dozor.engine.cluster import ClusterError, LeasedNode
from dozor.engine.engine import Engine
from dozor.settings import Settings
from dozor.store import monitors as store
from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.engine.conftest import add_monitor, eventually

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    yield engine
    await engine.dispose()


LEASE = 2.0  # seconds, for the tests that wait past a lease (a step every 0.67 s)


@pytest.fixture
async def node(postgres_url: str, database: AsyncEngine, tmp_path: Path
               ) -> AsyncIterator[Engine]:
    dozor = Engine(Settings.model_validate({
        "data_dir": tmp_path, "database_url": postgres_url, "flush_interval": 0.05,
        "reload_interval": 3600, "retention_interval": 3600}), database)
    await dozor.start()
    yield dozor
    await dozor.stop()


@pytest.fixture
async def quick(postgres_url: str, database: AsyncEngine, tmp_path: Path
                ) -> AsyncIterator[Engine]:
    """A node on a short lease."""
    dozor = Engine(Settings.model_validate({
        "data_dir": tmp_path, "database_url": postgres_url, "flush_interval": 0.05,
        "reload_interval": 3600, "retention_interval": 3600,
        "node_lease": f"{LEASE:g}s"}), database)
    await dozor.start()
    yield dozor
    await dozor.stop()


def cluster(dozor: Engine) -> LeasedNode:
    assert isinstance(dozor.cluster, LeasedNode)
    return dozor.cluster


async def count(database: AsyncEngine, table: Any) -> int:
    async with database.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


async def heartbeat_at(database: AsyncEngine, node_id: int | None) -> datetime | None:
    """The node's heartbeat as stored; None once its row is gone."""
    async with database.connect() as connection:
        value: datetime | None = await connection.scalar(
            select(t.server_nodes.c.heartbeat_at).where(t.server_nodes.c.id == node_id))
        return value


async def renewal(database: AsyncEngine, node: LeasedNode) -> None:
    """Wait until the node's stored heartbeat is renewed."""
    before = await heartbeat_at(database, node.node_id)

    async def renewed() -> bool:
        now = await heartbeat_at(database, node.node_id)
        return before is not None and now is not None and now > before
    await eventually(renewed, within=LEASE)


async def test_a_node_whose_monitor_was_taken_stores_results_not_state(
        node: Engine, database: AsyncEngine) -> None:
    shop = await add_monitor(database, name="shop", interval="1h", **{"confirm-after": 1})
    await node.reload()
    assert cluster(node).keeps(shop)
    # The others judge this node dead (its database was away) and one takes the monitor,
    # while a failure this node measured still waits in its writer.
    now = datetime.now(UTC)
    async with database.begin() as connection:
        await connection.execute(delete(t.server_nodes).where(
            t.server_nodes.c.id == cluster(node).node_id))
        other = (await connection.execute(insert(t.server_nodes).values(
            name="other:1", location="local", version="x", lease_ms=10_000, started_at=now,
            heartbeat_at=now).returning(t.server_nodes.c.id))).scalar_one()
        await connection.execute(insert(t.monitor_leases).values(
            monitor_id=shop, node_id=other, taken_at=now))
    down = Outcome.down(ErrorCode.CONNECTION_REFUSED, "refused", 1.0)
    observed = node.evaluator.evaluate(node.monitors[shop], down, now, "local")
    assert observed.transitions  # this node would open an incident
    node.writer.add(observed)
    await node.writer.flush()
    assert await count(database, t.results) == 1  # what it measured is kept
    assert await count(database, t.incidents) == 0  # the new holder decides
    async with database.connect() as connection:
        state = await connection.scalar(select(t.monitor_state.c.state)
                                        .where(t.monitor_state.c.monitor_id == shop))
    assert state == MonitorState.UNKNOWN.value


async def test_a_change_applied_while_the_lease_lapsed_keeps_the_monitor_checked(
        node: Engine, database: AsyncEngine) -> None:
    shop = await add_monitor(database, name="shop", interval="1h")
    await node.reload()
    assert shop in node.scheduler
    cluster(node)._valid_until = 0.0  # not renewed lately (a pause, a slow database)
    async with database.begin() as connection:
        await store.update_monitor(connection, shop, parse_monitor({
            "name": "shop", "kind": "scripted", "key": "shop", "interval": "1h",
            "retry-interval": "1s", "timeout": "5s"}))
    await node.reload()
    assert shop in node.scheduler  # still leased here: the next renewal makes it valid
    await node.rebalance()
    assert cluster(node).holds(shop) and shop in node.scheduler


async def test_a_step_that_fails_after_claiming_is_taken_up_by_the_next(
        node: Engine, database: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = 0
    original = restore.load_states

    async def second_read_fails(*arguments: Any, **options: Any) -> Any:
        nonlocal reads
        reads += 1
        if reads == 2:  # the reload's read went well; the one taking the lease up fails
            raise ConnectionError("the database went away")
        return await original(*arguments, **options)
    shop = await add_monitor(database, name="shop", interval="1h")
    with monkeypatch.context() as patch:
        patch.setattr(restore, "load_states", second_read_fails)
        with pytest.raises(ConnectionError):
            await node.reload()  # claims the new monitor, then cannot read its state
    assert shop not in node.scheduler
    await node.rebalance()
    assert cluster(node).holds(shop) and shop in node.scheduler



async def test_a_node_with_another_lease_is_refused(node: Engine, database: AsyncEngine) -> None:
    other = LeasedNode(database, "local", timedelta(seconds=30))
    with pytest.raises(ClusterError, match="DOZOR_NODE_LEASE 10s, this one 30s"):
        await other.preflight()
    with pytest.raises(ClusterError, match="DOZOR_LOCATION"):
        await LeasedNode(database, "waw", timedelta(seconds=10)).preflight()


async def test_a_node_whose_hand_back_waits_keeps_its_heartbeat_and_its_monitors(
        quick: Engine, database: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [await add_monitor(database, name=f"site-{i}", interval="1h") for i in range(4)]
    await quick.reload()
    assert cluster(quick).held == set(ids)
    # The writer cannot store (a slow database, a big batch): the hand-back that a new
    # node's arrival starts waits for it, and with it the rebalancing task.
    writable = asyncio.Event()
    flush = quick.writer.flush

    async def slow_flush() -> None:
        await writable.wait()
        await flush()
    monkeypatch.setattr(quick.writer, "flush", slow_flush)
    other = LeasedNode(database, "local", timedelta(seconds=LEASE))
    await other.start()
    try:
        kept = set(ids[:2])

        async def handing_back() -> bool:
            return cluster(quick).held == kept  # let go in memory, then the flush waits
        await eventually(handing_back, within=3 * LEASE)
        first = await heartbeat_at(database, cluster(quick).node_id)
        # Past a lease; meanwhile the other node steps as it would, and takes whatever
        # this one's silence would free.
        for _ in range(4):
            await asyncio.sleep(other.period)
            await other.step()
        assert other.held == set()  # this node was never judged dead
        last = await heartbeat_at(database, cluster(quick).node_id)
        assert first is not None and last is not None and last > first
        assert all(cluster(quick).holds(i) for i in kept)
        writable.set()  # stored: the leases go back, and the other node claims them

        async def shared() -> bool:
            await other.step()
            return other.held == set(ids[2:]) and cluster(quick).held == kept
        await eventually(shared, within=3 * LEASE)
    finally:
        writable.set()
        await other.stop()


async def test_a_node_judged_dead_while_rebalancing_stops_at_once_and_joins_again(
        quick: Engine, database: AsyncEngine) -> None:
    ids = {await add_monitor(database, name=f"site-{i}", interval="1h") for i in range(2)}
    await quick.reload()
    node = cluster(quick)
    old = node.node_id

    async def stopped() -> bool:
        return not any(node.holds(i) for i in ids)

    async def joined_again() -> bool:
        return (node.node_id != old and node.held == ids and all(map(node.holds, ids))
                and all(i in quick.scheduler for i in ids))
    async with quick._rebalancing:  # the step waits (a slow hand-back or take-up)
        await renewal(database, node)  # by the heartbeat task, then
        runs_out = node._valid_until
        async with database.begin() as connection:  # the others judged it dead
            await connection.execute(delete(t.server_nodes).where(
                t.server_nodes.c.id == old))
        await eventually(stopped, within=LEASE)
        assert time.monotonic() < runs_out  # found out at the next renewal, not run out
        assert node.node_id == old  # joining again is the step's
    await eventually(joined_again, within=3 * LEASE)
    assert await count(database, t.server_nodes) == 1
    assert await count(database, t.monitor_leases) == 2
    async with quick._rebalancing:  # the new row is the one renewed
        await renewal(database, node)
        assert all(map(node.holds, ids))
