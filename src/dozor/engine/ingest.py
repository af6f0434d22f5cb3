"""Writes what the evaluator decided: in batches, one transaction per batch.

A batch holds raw results, the rollups they update, each monitor's state, and every state
change with its incident; state-change listeners (the alert router) write their outbox
rows in the same transaction. So either all of it is stored or none of it, and a batch
that fails stays queued and is written on the next attempt.

A batch is written every ``flush_interval``, when ``batch_size`` results wait, and at
once when one of them changed a state (an alert should not wait for a timer).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.core.rollups import DAY, HOUR, Rollup, period_start
from dozor.core.statemachine import Transition
from dozor.core.types import MonitorState, ResultStatus
from dozor.engine.evaluator import Observation
from dozor.store import tables as t
from dozor.store.queries import rollup_from_row
from dozor.store.upsert import upsert

log = logging.getLogger(__name__)
MAX_QUEUED = 200_000  # past this, the oldest results are dropped (the database is gone)


@dataclass(frozen=True, slots=True)
class StateChange:
    """A committed-with-this-transaction change of a monitor's state."""

    monitor_id: int
    org_id: int
    monitor_name: str
    previous: MonitorState
    current: MonitorState
    at: datetime
    flapping: bool
    incident_id: int | None
    reason: str | None


Listener = Callable[[AsyncConnection, StateChange], Awaitable[None]]


class ResultWriter:
    def __init__(self, engine: AsyncEngine, location_id: int, batch_size: int = 1000) -> None:
        self.engine = engine
        self.location_id = location_id
        self.batch_size = batch_size
        self.listeners: list[Listener] = []
        self._queue: list[Observation] = []
        self._due = asyncio.Event()
        self._lock = asyncio.Lock()
        self._last_ms: dict[int, int] = {}
        self.written = 0

    def add(self, observation: Observation) -> None:
        self._queue.append(observation)
        if observation.transitions or len(self._queue) >= self.batch_size:
            self._due.set()

    def forget(self, monitor_id: int) -> None:
        """Drop queued results of a monitor that no longer exists."""
        self._queue = [o for o in self._queue if o.monitor.id != monitor_id]
        self._last_ms.pop(monitor_id, None)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def run_forever(self, flush_interval: float) -> None:
        while True:
            try:
                async with asyncio.timeout(flush_interval):
                    await self._due.wait()
            except TimeoutError:
                pass
            self._due.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("writing %d results failed; will retry", len(self._queue))
                await asyncio.sleep(min(flush_interval, 5.0))

    async def flush(self) -> None:
        async with self._lock:
            while self._queue:
                batch, self._queue = self._queue[:self.batch_size], self._queue[self.batch_size:]
                try:
                    await self._write_with_retry(batch)
                except BaseException:
                    self._queue[:0] = batch
                    del self._queue[:-MAX_QUEUED]
                    raise
                self.written += sum(1 for o in batch if o.outcome is not None)

    async def _write_with_retry(self, batch: list[Observation]) -> None:
        try:
            async with self.engine.begin() as connection:
                await self._write(connection, batch)
        except IntegrityError:
            # A monitor was deleted by another process while its results waited here.
            async with self.engine.connect() as connection:
                existing = set((await connection.execute(select(t.monitors.c.id))).scalars())
            batch[:] = [o for o in batch if o.monitor.id in existing]
            async with self.engine.begin() as connection:
                await self._write(connection, batch)

    async def _write(self, connection: AsyncConnection, batch: Sequence[Observation]) -> None:
        results = [self._result_row(o) for o in batch if o.outcome is not None]
        if results:
            await connection.execute(insert(t.results), results)
            await _update_rollups(connection, results)
        for observation in batch:
            for transition in observation.transitions:
                await self._record_transition(connection, observation, transition)
        await _save_states(connection, batch)

    def _result_row(self, o: Observation) -> dict[str, Any]:
        assert o.outcome is not None and o.status is not None
        at_ms = int(o.at.timestamp() * 1000)
        # The key is (monitor, ms, location): two results in one ms are nudged apart.
        at_ms = max(at_ms, self._last_ms.get(o.monitor.id, 0) + 1)
        self._last_ms[o.monitor.id] = at_ms
        outcome = o.outcome
        detail = None
        if not outcome.ok or o.transitions:
            detail = json.dumps({"message": outcome.message, "phases": outcome.phases,
                                 **outcome.details}, default=str, separators=(",", ":"))
        latency = round(outcome.latency_ms) if outcome.latency_ms is not None else None
        return {"monitor_id": o.monitor.id, "at": at_ms, "location_id": self.location_id,
                "status": int(o.status), "latency_ms": latency,
                "error": int(outcome.error) if outcome.error else None, "detail": detail}

    async def _record_transition(
        self, connection: AsyncConnection, o: Observation, transition: Transition
    ) -> None:
        monitor = o.monitor
        incident_id = await connection.scalar(
            select(t.monitor_state.c.incident_id).where(t.monitor_state.c.monitor_id
                                                        == monitor.id)
        )
        reason = o.outcome.message if o.outcome is not None else None
        if transition.incident == "open":
            incident_id = await _open_incident(connection, o, self.location_id)
        elif transition.incident == "close" and incident_id is not None:
            resolution = "paused" if transition.current is MonitorState.PAUSED else "recovered"
            await connection.execute(
                update(t.incidents).where(t.incidents.c.id == incident_id)
                .values(closed_at=transition.at, resolution=resolution)
            )
        await connection.execute(
            insert(t.state_changes).values(
                org_id=monitor.org_id, monitor_id=monitor.id, at=transition.at,
                previous=transition.previous.value, current=transition.current.value,
                flapping=transition.flapping, incident_id=incident_id, reason=reason,
            )
        )
        change = StateChange(monitor.id, monitor.org_id, monitor.name, transition.previous,
                             transition.current, transition.at, transition.flapping,
                             incident_id, reason)
        for listener in self.listeners:
            await listener(connection, change)


async def _open_incident(connection: AsyncConnection, o: Observation, location_id: int) -> int:
    outcome = o.outcome
    incident_id = await connection.scalar(
        insert(t.incidents).values(
            org_id=o.monitor.org_id, monitor_id=o.monitor.id, opened_at=o.at,
            cause=(outcome.message if outcome and outcome.message else "down"),
            first_error=int(outcome.error) if outcome and outcome.error else None,
            location_id=location_id,
        ).returning(t.incidents.c.id)
    )
    await connection.execute(
        update(t.monitor_state).where(t.monitor_state.c.monitor_id == o.monitor.id)
        .values(incident_id=incident_id)
    )
    return int(incident_id)


async def _save_states(connection: AsyncConnection, batch: Sequence[Observation]) -> None:
    latest: dict[int, Observation] = {}
    for observation in batch:
        latest[observation.monitor.id] = observation
    rows = []
    for o in latest.values():
        tracker = o.tracker
        row = {"m_id": o.monitor.id, "state": tracker.state.value, "since": tracker.since,
               "failures": tracker.failures, "successes": tracker.successes,
               "history": tracker.history, "history_len": tracker.history_len,
               "flapping": tracker.flapping}
        if not tracker.incident_open:
            row["incident_id"] = None
        rows.append(row)
    # Rows of monitors with an open incident must keep the incident id set in this batch.
    keeping = [r for r in rows if "incident_id" not in r]
    clearing = [r for r in rows if "incident_id" in r]
    checked = {o.monitor.id: o for o in batch if o.outcome is not None}
    for group in (keeping, clearing):
        if group:
            await connection.execute(_state_update(group[0]), group)
    if checked:
        await connection.execute(_checked_update(), [_checked_values(o) for o in
                                                     checked.values()])


def _state_update(sample: dict[str, Any]) -> Any:
    columns: dict[str, Any] = {k: bindparam(k) for k in sample if k != "m_id"}
    return (update(t.monitor_state)
            .where(t.monitor_state.c.monitor_id == bindparam("m_id")).values(**columns))


def _checked_update() -> Any:
    state = t.monitor_state
    return update(state).where(state.c.monitor_id == bindparam("m_id")).values(
        last_checked_at=bindparam("checked_at"), last_latency_ms=bindparam("latency"),
        last_error=bindparam("error"), last_message=bindparam("message"),
    )


def _checked_values(o: Observation) -> dict[str, Any]:
    assert o.outcome is not None
    return {"m_id": o.monitor.id, "checked_at": o.at, "latency": o.outcome.latency_ms,
            "error": int(o.outcome.error) if o.outcome.error else None,
            "message": o.outcome.message}


async def _update_rollups(connection: AsyncConnection, results: list[dict[str, Any]]) -> None:
    for table, size in ((t.rollups_hourly, HOUR), (t.rollups_daily, DAY)):
        fresh: dict[tuple[int, int, int], Rollup] = defaultdict(Rollup)
        for r in results:
            if r["status"] == ResultStatus.MAINTENANCE:
                continue  # maintenance is excluded from uptime
            bucket = period_start(r["at"] // 1000, size)
            fresh[(r["monitor_id"], r["location_id"], bucket)].add(
                r["status"] == ResultStatus.UP, r["latency_ms"])
        if fresh:
            merged = await _merge_with_stored(connection, table, fresh)
            await upsert(connection, table, [_rollup_row(k, v) for k, v in merged.items()],
                         keys=("monitor_id", "location_id", "bucket"))


async def _merge_with_stored(
    connection: AsyncConnection, table: Table, fresh: dict[tuple[int, int, int], Rollup]
) -> dict[tuple[int, int, int], Rollup]:
    by_bucket: dict[tuple[int, int], list[int]] = defaultdict(list)
    for monitor_id, location_id, bucket in fresh:
        by_bucket[(location_id, bucket)].append(monitor_id)
    for (location_id, bucket), monitor_ids in by_bucket.items():
        query = select(table).where(table.c.location_id == location_id,
                                    table.c.bucket == bucket,
                                    table.c.monitor_id.in_(monitor_ids))
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        for row in await connection.execute(query):
            fresh[(row.monitor_id, location_id, bucket)].merge(rollup_from_row(row))
    return fresh


def _rollup_row(key: tuple[int, int, int], r: Rollup) -> dict[str, Any]:
    monitor_id, location_id, bucket = key
    return {"monitor_id": monitor_id, "location_id": location_id, "bucket": bucket,
            "checks": r.checks, "up": r.up, "timed": r.timed, "latency_sum": r.latency_sum,
            "latency_min": r.latency_min, "latency_max": r.latency_max,
            "p50": r.histogram.quantile(0.50), "p95": r.histogram.quantile(0.95),
            "p99": r.histogram.quantile(0.99), "histogram": r.histogram.encode()}
