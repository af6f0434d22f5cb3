"""This server node among others on one database: which monitors it checks.

On PostgreSQL several ``dozor serve`` processes share one database. Each registers as a
node and renews its heartbeat every ``lease / 3``; a monitor is checked, and its state
written, only by the node holding its lease (``store.nodes``). A lease lives as long as
its node's heartbeat: a node not heard within ``lease`` is deleted by the others, its
leases with it, and the live nodes claim the freed monitors, each up to its fair share
(the monitors divided by the live nodes, rounded up). A node holding more than its share
(another node joined) hands the extra back: the engine stops checking them and stores
what they measured first, then the leases go, so no two nodes check a monitor at once.

A node that cannot renew its heartbeat (the database is out of its reach, or the process
was frozen) stops checking on its own before the others may judge it dead: its deadline
is counted on its own monotonic clock from before its last renewal, one period short of
the lease, while the others count on the database's clock from after it. The heartbeat
is renewed on a task of its own (``renew``) as well as by each step, so a step waiting
on a slow hand-back or take-up never lets a node that is well lapse or be judged dead.

SQLite has one writer and one node: ``SingleNode`` holds every monitor, and locks the
database file, so that a second ``dozor serve`` on the same file refuses to start
instead of checking and alerting everything twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor import __version__
from dozor.store import nodes
from dozor.store.db import is_sqlite

log = logging.getLogger(__name__)


class ClusterError(Exception):
    """This node cannot join: the message says why and what to do."""


@dataclass(slots=True)
class Plan:
    """What one step changed for the engine."""

    taken: set[int] = field(default_factory=set)  # now held here: load state, schedule
    lost: set[int] = field(default_factory=set)  # held elsewhere now: drop, store nothing
    excess: set[int] = field(default_factory=set)  # to hand back: stop, store, give_back


class Node(Protocol):
    leader: bool  # runs the installation-wide jobs (rollups, retention)
    period: float  # seconds between steps
    shared: bool  # other nodes may serve this database (and take heartbeat pings)

    def holds(self, monitor_id: int) -> bool: ...
    def keeps(self, monitor_id: int) -> bool: ...
    async def fence(self, connection: AsyncConnection, ids: Iterable[int]) -> set[int]: ...
    async def preflight(self) -> None: ...
    async def start(self) -> None: ...
    async def step(self) -> Plan: ...
    async def renew(self) -> None: ...
    def let_go(self, ids: Iterable[int]) -> None: ...
    async def give_back(self, ids: Iterable[int]) -> None: ...
    async def stop(self) -> None: ...


def node_for(database: AsyncEngine, location: str, lease: timedelta) -> Node:
    if is_sqlite(database):
        return SingleNode(database.url.database)
    return LeasedNode(database, location, lease)


class SingleNode:
    """The only node of a SQLite database: holds every monitor."""

    leader = True
    period = 60.0
    shared = False

    def __init__(self, path: str | None) -> None:
        # Resolved: a database reached through a symbolic link has one lock, not two.
        self.path = (Path(f"{Path(path).resolve()}.serve.lock")
                     if path and path != ":memory:" else None)
        self._lock: IO[str] | None = None

    def holds(self, monitor_id: int) -> bool:
        return True

    def keeps(self, monitor_id: int) -> bool:
        return True

    async def fence(self, connection: AsyncConnection, ids: Iterable[int]) -> set[int]:
        return set(ids)

    async def preflight(self) -> None:
        """Refuse (ClusterError) if another server runs on this file."""
        await self.start()
        await self.stop()

    async def start(self) -> None:
        if self.path is None:
            return
        try:
            lock = self.path.open("a+")
        except OSError as error:
            raise ClusterError(f"cannot open the server lock {self.path}: {error.strerror} "
                               "(it sits beside the database file; run as its owner)") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise ClusterError(
                f"another dozor serve ({holder}) runs on this SQLite database; SQLite "
                "runs one server node: for several, use PostgreSQL "
                "(DOZOR_DATABASE_URL=postgresql://...)") from None
        lock.truncate(0)
        lock.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        lock.flush()
        self._lock = lock  # the kernel lets go of it when this process ends, however

    async def step(self) -> Plan:
        return Plan()

    async def renew(self) -> None:
        pass

    def let_go(self, ids: Iterable[int]) -> None:
        pass

    async def give_back(self, ids: Iterable[int]) -> None:
        pass

    async def stop(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


class LeasedNode:
    """A node of a PostgreSQL database: holds the monitors it has leases for."""

    shared = True

    def __init__(self, database: AsyncEngine, location: str, lease: timedelta) -> None:
        self.database = database
        self.location = location
        self.lease = lease
        self.period = lease.total_seconds() / 3
        self._lease_ms = int(lease.total_seconds() * 1000)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.node_id: int | None = None
        self.held: set[int] = set()
        self.leader = False
        self._valid_until = 0.0  # monotonic: past it, this node holds nothing

    def holds(self, monitor_id: int) -> bool:
        """Whether this node may check the monitor now: leased here, and renewed lately."""
        return monitor_id in self.held and time.monotonic() < self._valid_until

    def keeps(self, monitor_id: int) -> bool:
        """Whether the monitor is leased here, renewed lately or not: a lapse is healed by
        the next renewal (or the monitor is lost then), not by forgetting the monitor."""
        return monitor_id in self.held

    async def preflight(self) -> None:
        """Refuse (ClusterError) if the live nodes disagree with this one."""
        async with self.database.connect() as connection:
            try:
                others = await nodes.live(connection, self.lease)
            except ProgrammingError:  # not migrated yet: no node has run here
                return
        self._agree(others)

    async def start(self) -> None:
        before = time.monotonic()
        async with self.database.begin() as connection:
            others = await nodes.live(connection, self.lease)
            self._agree(others)
            node_id = await self._join(connection)
        self.node_id = node_id
        self._renewed(node_id, before)
        log.info("server node %s joined (%d other live nodes)", self.name, len(others))

    def _agree(self, others: list[nodes.Node]) -> None:
        """Refuse to join nodes that check from elsewhere or judge heartbeats by another
        lease (each would take the other's monitors, or judge it dead, too soon)."""
        leases = sorted({n.lease_ms for n in others} - {self._lease_ms})
        if leases:
            raise ClusterError(
                f"the server nodes on this database use DOZOR_NODE_LEASE "
                f"{', '.join(f'{ms / 1000:g}s' for ms in leases)}, this one "
                f"{self._lease_ms / 1000:g}s: give every node the same")
        elsewhere = sorted({n.location for n in others} - {self.location})
        if elsewhere:
            # Nodes divide one location's work; another location is a probe's job.
            raise ClusterError(
                f"the server nodes on this database check from location "
                f"{', '.join(elsewhere)}, this one from {self.location}: give every "
                "node the same DOZOR_LOCATION (check from elsewhere with dozor probe)")

    async def _join(self, connection: AsyncConnection) -> int:
        return await nodes.join(connection, self.name, self.location, __version__, self.lease)

    def _renewed(self, node_id: int, before: float) -> None:
        """A renewal of ``node_id``'s heartbeat committed, begun at ``before``: its leases
        are valid until the others may judge it dead, less a period. Only ever extended
        (the step and ``renew`` may finish in either order), and only for the row this
        node is now: a renewal of a row it left says nothing of the new one."""
        if node_id == self.node_id:
            self._valid_until = max(self._valid_until,
                                    before + self.lease.total_seconds() - self.period)

    async def renew(self) -> None:
        """Renew the heartbeat alone, in one short transaction: the engine calls it every
        period on a task of its own, so a step stuck behind a slow hand-back or take-up
        (``Engine.rebalance``) never keeps a node that is well from renewing.

        It changes no lease, ``held`` or ``node_id``: those are the step's, which runs under
        the engine's rebalancing lock. Finding its row gone (the others judged it dead and
        its leases went with it), it only stops checking at once; the step, which renews
        too, finds the row gone as well and joins again. One writer of the membership, so
        no lock is shared with the step and a busy step never holds up a renewal."""
        node_id = self.node_id
        if node_id is None:  # not started, or stopped
            return
        before = time.monotonic()
        async with self.database.begin() as connection:
            alive = await nodes.heartbeat(connection, node_id)
        if alive:
            self._renewed(node_id, before)
        elif node_id == self.node_id:  # not joined again meanwhile: nothing is held here
            self._valid_until = 0.0

    async def step(self) -> Plan:
        """Renew the heartbeat, remove dead nodes, claim or hand back monitors."""
        assert self.node_id is not None, "start() first"
        node_id = self.node_id
        before = time.monotonic()
        async with self.database.begin() as connection:
            # Renewed here too: the row stays locked while the step claims for it, and a
            # node judged dead finds out here, where joining again belongs (``renew``).
            if not await nodes.heartbeat(connection, node_id):
                log.warning("server node %s was judged dead by the others; joining again",
                            self.name)
                self._valid_until = 0.0  # its leases are gone, whether this commits or not
                node_id = await self._join(connection)
            for name in await nodes.remove_dead(connection, self.lease):
                log.warning("server node %s went silent; its monitors are taken over", name)
            live = await nodes.live(connection, self.lease)
            mine = await nodes.held_by(connection, node_id)
            share = math.ceil(await nodes.monitor_count(connection) / max(1, len(live)))
            if len(mine) < share:
                mine |= await nodes.claim(connection, node_id, share - len(mine))
        plan = Plan()
        if node_id != self.node_id:  # joined again: every old lease went with the old row
            plan.lost, self.held, self.node_id = set(self.held), set(), node_id
        self._renewed(node_id, before)
        plan.lost |= self.held - mine
        plan.taken = mine - self.held
        # The highest ids go back: a newcomer claims free monitors lowest first.
        plan.excess = set(sorted(mine)[share:])
        self.held = mine
        self.leader = bool(live) and live[0].id == node_id
        return plan

    async def fence(self, connection: AsyncConnection, ids: Iterable[int]) -> set[int]:
        """Of ``ids``, the monitors still leased here, locked until ``connection``'s
        transaction ends: the result writer writes state only for those, so a node whose
        lease was taken while its writes waited (the database was away) never overwrites
        the new holder's state or opens a second incident."""
        if self.node_id is None:
            return set()
        return await nodes.still_held(connection, self.node_id, ids)

    def let_go(self, ids: Iterable[int]) -> None:
        """Stop holding ``ids`` in memory (checks of them stop here at once)."""
        self.held.difference_update(ids)

    async def give_back(self, ids: Iterable[int]) -> None:
        """Release leases the engine stopped and stored (``let_go`` first)."""
        chosen = set(ids)
        self.held -= chosen
        assert self.node_id is not None
        async with self.database.begin() as connection:
            await nodes.release(connection, self.node_id, chosen)

    async def stop(self) -> None:
        """Leave: the leases go at once, for the other nodes' next step."""
        if self.node_id is None:
            return
        self.held.clear()
        try:
            async with self.database.begin() as connection:
                await nodes.leave(connection, self.node_id)
        except Exception:  # the others remove it when its heartbeat runs out
            log.exception("leaving the cluster failed")
        self.node_id = None
