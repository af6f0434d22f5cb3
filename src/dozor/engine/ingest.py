"""Writes what the evaluator decided: in batches, one transaction per batch.

A batch holds raw results, the rollups they update, each monitor's state, and every state
change with its incident; state-change listeners (the alert router) write their outbox
rows in the same transaction. So either all of it is stored or none of it, and a batch
that fails stays queued and is written on the next attempt.

A batch is written every ``flush_interval``, when ``batch_size`` results wait, and at
once when one of them changed a state (an alert should not wait for a timer).

A regional problem (``Observation.regional``) is no state change: no listener sees it
inside the transaction. The writer remembers the regional set it stored for each monitor
and hands the ones a batch changed to ``regional_committed`` after that batch commits.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.core import phases
from dozor.core.types import Outcome, ResultStatus
from dozor.engine.evaluator import Observation
from dozor.engine.transitions import Listener, StateChange, record_transitions
from dozor.store import late_hours
from dozor.store import tables as t
from dozor.store.db import write_transaction

__all__ = ["Fence", "Listener", "RegionalChange", "ResultWriter", "StateChange"]
log = logging.getLogger(__name__)
Fence = Callable[[AsyncConnection, set[int]], Awaitable[set[int]]]
MAX_QUEUED = 200_000  # past this, the oldest results are dropped (the database is gone)


@dataclass(frozen=True, slots=True)
class RegionalChange:
    """A monitor's regional problem appeared, moved or cleared (``regional`` empty), as
    committed in ``monitor_state.regional``."""

    monitor_id: int
    org_id: int
    regional: tuple[str, ...]


RegionalCallback = Callable[[Sequence[RegionalChange]], None]


class ResultWriter:
    def __init__(self, engine: AsyncEngine, location_id: int, batch_size: int = 1000) -> None:
        self.engine = engine
        self.location_id = location_id
        self.batch_size = batch_size
        self.listeners: list[Listener] = []
        # Called after a batch with state changes committed (wakes the alert dispatcher).
        self.after_commit: list[Callable[[], None]] = []
        self.open_incidents: dict[int, int] = {}  # monitor id -> its open incident's id
        # Called after a commit with the regional problems it changed (live pages).
        self.regional_committed: list[RegionalCallback] = []
        # monitor id -> its regional problem as stored (absent: none), loaded with the
        # open incidents when a monitor is taken up; this writer alone writes it.
        self.regional: dict[int, tuple[str, ...]] = {}
        # Several server nodes (engine.cluster): which of these monitors this node still
        # holds, locked for the transaction; state is written only for those.
        self.fence: Fence | None = None
        self._queue: list[Observation] = []
        self._due = asyncio.Event()
        self._lock = asyncio.Lock()
        self._last_ms: dict[int, int] = {}
        self._writing: list[Observation] = []
        self._stopping = False
        self.written = 0

    def add(self, observation: Observation) -> None:
        # The stored time is fixed here, once: a retried batch keeps its times. The key is
        # (monitor, ms, location), so two results in one millisecond are nudged apart.
        # A probe's result is stored already (api.probes): only its decision is left.
        if not observation.remote:
            at_ms = max(int(observation.at.timestamp() * 1000),
                        self._last_ms.get(observation.monitor.id, 0) + 1)
            observation.at_ms = self._last_ms[observation.monitor.id] = at_ms
        self._queue.append(observation)
        if len(self._queue) > MAX_QUEUED:  # the database has been gone for a long time
            dropped = len(self._queue) - MAX_QUEUED
            del self._queue[:dropped]
            log.error("result queue full: dropped the %d oldest results", dropped)
        if observation.transitions or len(self._queue) >= self.batch_size:
            self._due.set()

    def oldest_unwritten(self) -> int | None:
        """Epoch ms of the oldest result not yet stored (queued or being written)."""
        pending = [o.at_ms for o in self._queue[:1]] + [o.at_ms for o in self._writing[:1]]
        return min(pending) if pending else None

    def forget(self, monitor_id: int) -> None:
        """Drop queued results of a monitor that no longer exists."""
        self._queue = [o for o in self._queue if o.monitor.id != monitor_id]
        self._last_ms.pop(monitor_id, None)
        self.open_incidents.pop(monitor_id, None)
        self.regional.pop(monitor_id, None)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def pending(self) -> int:
        """Results not stored yet: queued, or in the batch being written."""
        return len(self._queue) + len(self._writing)

    def stop(self) -> None:
        """Ask run_forever to write what is queued and return (never cancel it mid-write)."""
        self._stopping = True
        self._due.set()

    async def run_forever(self, flush_interval: float) -> None:
        while not self._stopping:
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
                if not self._stopping:
                    await asyncio.sleep(min(flush_interval, 5.0))

    async def flush(self) -> None:
        async with self._lock:
            while self._queue:
                batch, self._queue = self._queue[:self.batch_size], self._queue[self.batch_size:]
                self._writing = batch
                try:
                    incidents = await self._write_with_retry(batch)
                except BaseException:
                    self._queue[:0] = batch
                    del self._queue[:-MAX_QUEUED]
                    raise
                finally:
                    self._writing = []
                self._remember(incidents)
                self.written += sum(1 for o in batch if _measured_here(o))

    def _remember(self, incidents: dict[int, int | None]) -> None:
        # Only after the commit: a failed batch must not leave its incidents in memory.
        for monitor_id, incident_id in incidents.items():
            if incident_id is None:
                self.open_incidents.pop(monitor_id, None)
            else:
                self.open_incidents[monitor_id] = incident_id

    async def _write_with_retry(self, batch: list[Observation]) -> dict[int, int | None]:
        try:
            return await self._write(batch)
        except IntegrityError:
            # A monitor was deleted by another process while its results waited here.
            async with self.engine.connect() as connection:
                existing = set((await connection.execute(select(t.monitors.c.id))).scalars())
            batch[:] = [o for o in batch if o.monitor.id in existing]
            try:
                return await self._write(batch)
            except IntegrityError:
                return await self._write_each_monitor(batch)

    async def _write_each_monitor(self, batch: list[Observation]) -> dict[int, int | None]:
        """Last resort: one transaction per monitor, so one monitor's bad row (a bug) costs
        that monitor's results, not every monitor's from now on."""
        incidents: dict[int, int | None] = {}
        groups: dict[int, list[Observation]] = {}
        for observation in batch:
            groups.setdefault(observation.monitor.id, []).append(observation)
        for monitor_id, group in groups.items():
            try:
                incidents |= await self._write(group)
            except IntegrityError:
                log.exception("dropped %d results of monitor %s that cannot be stored",
                              len(group), monitor_id)
                self.open_incidents.pop(monitor_id, None)
        return incidents

    async def _write(self, batch: Sequence[Observation]) -> dict[int, int | None]:
        async with write_transaction(self.engine) as connection:
            results = [self._result_row(o) for o in batch if _measured_here(o)]
            if results:  # rollups are made from these by engine.rollup_job
                await connection.execute(insert(t.results), results)
                # Another server node may have rolled their hour up already (when this
                # one writes its queue after a database outage): the job makes it again.
                await late_hours.mark(connection, ((r["monitor_id"], r["at"], r["location_id"])
                                                   for r in results), datetime.now(UTC))
            decided = await self._still_held(connection, batch)
            incidents = await record_transitions(connection, decided, self.open_incidents,
                                                 self.location_id, self.listeners)
            await self._save_states(connection, decided, incidents)
            regional = self._regional_changes(decided)
        if self.after_commit and any(o.transitions for o in batch):
            for callback in self.after_commit:
                callback()
        if regional:
            self._remember_regional(regional)
        return incidents

    def _regional_changes(self, batch: Sequence[Observation]) -> list[RegionalChange]:
        """The monitors whose stored regional problem this batch changes (its latest
        observation of each is what ``_save_states`` stores)."""
        latest = {o.monitor.id: o for o in batch}
        return [RegionalChange(monitor_id, o.monitor.org_id, o.regional)
                for monitor_id, o in sorted(latest.items())
                if o.regional != self.regional.get(monitor_id, ())]

    def _remember_regional(self, changes: Sequence[RegionalChange]) -> None:
        # Only after the commit: a batch that failed changed nothing, and is written again.
        for change in changes:
            if change.regional:
                self.regional[change.monitor_id] = change.regional
            else:
                self.regional.pop(change.monitor_id, None)
        for callback in self.regional_committed:
            callback(changes)

    async def _still_held(self, connection: AsyncConnection, batch: Sequence[Observation]
                          ) -> Sequence[Observation]:
        """The observations whose state this node may still write (all, with one node).
        What it measured is stored either way: those are facts, whoever decides."""
        if self.fence is None:
            return batch
        held = await self.fence(connection, {o.monitor.id for o in batch})
        kept = [o for o in batch if o.monitor.id in held]
        if len(kept) < len(batch):
            log.warning("%d monitors were taken over by another node before their state "
                        "was written here: their results are stored, their state is not",
                        len({o.monitor.id for o in batch} - held))
        return kept

    def _result_row(self, o: Observation) -> dict[str, Any]:
        assert o.outcome is not None and o.status is not None
        return result_row(o.monitor.id, o.at_ms, self.location_id, o.status, o.outcome,
                          changed_state=bool(o.transitions))

    async def _save_states(self, connection: AsyncConnection, batch: Sequence[Observation],
                           incidents: dict[int, int | None]) -> None:
        """One row per monitor: its latest state, and what its latest check found."""
        latest: dict[int, Observation] = {}
        checked: dict[int, Observation] = {}
        for observation in batch:
            latest[observation.monitor.id] = observation
            if _measured_here(observation):
                checked[observation.monitor.id] = observation
        rows_checked, rows_state = [], []
        for monitor_id, o in sorted(latest.items()):  # one lock order (record_latest_checks)
            incident = incidents[monitor_id] if monitor_id in incidents \
                else self.open_incidents.get(monitor_id)
            row = _state_values(o) | {"incident_id": incident}
            if monitor_id in checked:
                rows_checked.append(row | _checked_values(checked[monitor_id]))
            else:
                rows_state.append(row)
        for rows in (rows_checked, rows_state):
            if rows:
                await connection.execute(_state_update(rows[0]), rows)


def result_row(monitor_id: int, at_ms: int, location_id: int, status: ResultStatus,
               outcome: Outcome, changed_state: bool = False) -> dict[str, Any]:
    """A ``results`` row, whoever measured it (this server's engine, or a probe)."""
    detail = None
    if not outcome.ok or changed_state:  # details only where someone will look
        detail = json.dumps({"message": outcome.message, "phases": outcome.phases,
                             **outcome.details}, default=str, separators=(",", ":"))
    latency = round(outcome.latency_ms) if outcome.latency_ms is not None else None
    return {"monitor_id": monitor_id, "at": at_ms, "location_id": location_id,
            "status": int(status), "latency_ms": latency,
            "error": int(outcome.error) if outcome.error else None, "detail": detail,
            "phases": phases.pack(outcome.phases)}


def _measured_here(o: Observation) -> bool:
    """A result this writer stores (a probe's is stored by api.probes)."""
    return o.outcome is not None and not o.remote


def _state_values(o: Observation) -> dict[str, Any]:
    tracker = o.tracker
    return {"m_id": o.monitor.id, "state": tracker.state.value, "since": tracker.since,
            "failures": tracker.failures, "successes": tracker.successes,
            "history": tracker.history, "history_len": tracker.history_len,
            "flapping": tracker.flapping, "regional": list(o.regional) or None}


def _checked_values(o: Observation) -> dict[str, Any]:
    assert o.outcome is not None
    return checked_values(o.at, o.outcome)


def checked_values(at: datetime, outcome: Outcome) -> dict[str, Any]:
    """What a monitor's state shows of its latest check."""
    return {"last_checked_at": at, "last_latency_ms": outcome.latency_ms,
            "last_error": int(outcome.error) if outcome.error else None,
            "last_message": outcome.message, "expires_at": expiry(outcome.details)}


async def record_latest_checks(connection: AsyncConnection,
                               checks: Iterable[tuple[int, datetime, Outcome]]) -> None:
    """Show checks measured elsewhere (a probe's) as their monitors' latest, each unless
    a later one is shown already: a probe's buffer delivered late never turns it back.
    The state itself is the holding node's to write (``Engine.evaluate_remote``)."""
    latest: dict[int, tuple[datetime, Outcome]] = {}
    for monitor_id, at, outcome in checks:
        if monitor_id not in latest or latest[monitor_id][0] < at:
            latest[monitor_id] = (at, outcome)
    if not latest:
        return
    state = t.monitor_state.c
    rows = [{"m_id": monitor_id} | checked_values(at, outcome)
            for monitor_id, (at, outcome) in sorted(latest.items())]  # one lock order
    await connection.execute(
        update(t.monitor_state).where(
            state.monitor_id == bindparam("m_id"),
            or_(state.last_checked_at.is_(None),
                state.last_checked_at < bindparam("last_checked_at")))
        .values({k: bindparam(k) for k in rows[0] if k != "m_id"}), rows)


# Where each kind's details say when its certificate or registration runs out.
_EXPIRY_KEYS = ("certificate_expires_at", "not_after", "expires_at")


def expiry(details: dict[str, Any]) -> datetime | None:
    """The expiry a check reported, if any.

    >>> expiry({"not_after": "2027-01-31T12:00:00+00:00", "days_left": 61})
    datetime.datetime(2027, 1, 31, 12, 0, tzinfo=datetime.timezone.utc)
    >>> expiry({"peer_ip": "127.0.0.1"}) is None
    True
    """
    for key in _EXPIRY_KEYS:
        value = details.get(key)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                return None
        if isinstance(value, datetime):
            return value
    return None


def _state_update(sample: dict[str, Any]) -> Any:
    state = t.monitor_state
    columns: dict[str, Any] = {k: bindparam(k) for k in sample if k != "m_id"}
    return update(state).where(state.c.monitor_id == bindparam("m_id")).values(**columns)
