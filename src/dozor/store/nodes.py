"""Server nodes and their monitor leases as stored (PostgreSQL only: ``engine.cluster``).

Every time here is the database's clock (``now()``), never a node's: nodes judge each
other's heartbeats, and two machines' clocks may disagree by more than a lease lasts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, literal, select, true, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.store import tables as t

nodes = t.server_nodes.c
leases = t.monitor_leases.c


@dataclass(frozen=True, slots=True)
class Node:
    id: int
    name: str
    location: str
    version: str
    lease_ms: int
    started_at: datetime
    heartbeat_at: datetime
    monitors: int  # leases it holds


async def join(connection: AsyncConnection, name: str, location: str, version: str,
               lease: timedelta) -> int:
    """Register a node; its id."""
    return int((await connection.execute(insert(t.server_nodes).values(
        name=name, location=location, version=version,
        lease_ms=int(lease.total_seconds() * 1000), started_at=func.now(),
        heartbeat_at=func.now()).returning(nodes.id))).scalar_one())


async def heartbeat(connection: AsyncConnection, node_id: int) -> bool:
    """Renew a node's heartbeat (and with it its leases). False when its row is gone: the
    others judged it dead and took its monitors."""
    result = await connection.execute(update(t.server_nodes).where(nodes.id == node_id)
                                      .values(heartbeat_at=func.now()))
    return bool(result.rowcount)


async def remove_dead(connection: AsyncConnection, lease: timedelta) -> list[str]:
    """Delete nodes not heard within ``lease`` (their leases go with them); their names."""
    result = await connection.execute(
        delete(t.server_nodes).where(nodes.heartbeat_at < func.now() - lease)
        .returning(nodes.name))
    return list(result.scalars())


async def live(connection: AsyncConnection, lease: timedelta) -> list[Node]:
    """The nodes heard within ``lease``, oldest first, with how many monitors each holds."""
    return await _nodes(connection, nodes.heartbeat_at >= func.now() - lease)


async def held_by(connection: AsyncConnection, node_id: int) -> set[int]:
    return set((await connection.execute(
        select(leases.monitor_id).where(leases.node_id == node_id))).scalars())


async def holders(connection: AsyncConnection) -> dict[int, int]:
    """Every leased monitor's id -> the node holding it."""
    rows = (await connection.execute(select(leases.monitor_id, leases.node_id))).all()
    return {row.monitor_id: row.node_id for row in rows}


async def still_held(connection: AsyncConnection, node_id: int, ids: Iterable[int]
                     ) -> set[int]:
    """Which of ``ids`` are leased to ``node_id``, their leases locked (FOR SHARE) until
    the caller's transaction ends: nobody deletes or takes them meanwhile, so what the
    caller writes about them is the holder's."""
    chosen = list(ids)
    if not chosen:
        return set()
    query = (select(leases.monitor_id)
             .where(leases.node_id == node_id, leases.monitor_id.in_(chosen))
             .with_for_update(read=True))
    return set((await connection.execute(query)).scalars())


async def monitor_count(connection: AsyncConnection) -> int:
    return int(await connection.scalar(select(func.count()).select_from(t.monitors)) or 0)


async def claim(connection: AsyncConnection, node_id: int, most: int) -> set[int]:
    """Lease up to ``most`` monitors nobody holds to ``node_id``; the ids it got. Two nodes
    claiming at once never get the same monitor (the lease's key), one just gets fewer."""
    if most <= 0:
        return set()
    free = (select(t.monitors.c.id, literal(node_id), func.now())
            .where(~select(leases.monitor_id).where(leases.monitor_id == t.monitors.c.id)
                   .exists())
            .order_by(t.monitors.c.id).limit(most))
    statement = (postgresql.insert(t.monitor_leases)
                 .from_select(["monitor_id", "node_id", "taken_at"], free)
                 .on_conflict_do_nothing().returning(leases.monitor_id))
    return set((await connection.execute(statement)).scalars())


async def release(connection: AsyncConnection, node_id: int, ids: Iterable[int]) -> None:
    chosen = list(ids)
    if chosen:
        await connection.execute(delete(t.monitor_leases).where(
            leases.node_id == node_id, leases.monitor_id.in_(chosen)))


async def leave(connection: AsyncConnection, node_id: int) -> None:
    """A node stopping: its row goes, and its leases with it."""
    await connection.execute(delete(t.server_nodes).where(nodes.id == node_id))


async def all_nodes(connection: AsyncConnection) -> list[Node]:
    """Every registered node (live or not yet removed), for ``dozor nodes``."""
    return await _nodes(connection, true())


async def _nodes(connection: AsyncConnection, where: Any) -> list[Node]:
    held = (select(func.count()).select_from(t.monitor_leases)
            .where(leases.node_id == nodes.id).scalar_subquery().label("monitors"))
    rows = (await connection.execute(
        select(t.server_nodes, held).where(where).order_by(nodes.id))).all()
    return [_node(row) for row in rows]


async def database_now(connection: AsyncConnection) -> datetime:
    value: Any = await connection.scalar(select(func.now()))
    return value  # type: ignore[no-any-return]


def _node(row: Row[Any]) -> Node:
    return Node(row.id, row.name, row.location, row.version, row.lease_ms, row.started_at,
                row.heartbeat_at, int(row.monitors))
