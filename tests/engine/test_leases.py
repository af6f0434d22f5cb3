"""One server node's leases under failure, in process on PostgreSQL: a node whose monitor
was taken while its writes waited stores its results but not its state; a lease that
lapsed for a moment, or a step that failed half-way, never leaves a leased monitor
unchecked."""

from __future__ import annotations

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
from tests.engine.conftest import add_monitor

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def node(postgres_url: str, database: AsyncEngine, tmp_path: Path
               ) -> AsyncIterator[Engine]:
    dozor = Engine(Settings.model_validate({
        "data_dir": tmp_path, "database_url": postgres_url, "flush_interval": 0.05,
        "reload_interval": 3600, "retention_interval": 3600}), database)
    await dozor.start()
    yield dozor
    await dozor.stop()


def cluster(dozor: Engine) -> LeasedNode:
    assert isinstance(dozor.cluster, LeasedNode)
    return dozor.cluster


async def count(database: AsyncEngine, table: Any) -> int:
    async with database.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


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
