"""The monitoring engine: schedule, check, evaluate, persist; follow configuration live.

Start-up loads every monitor with its stored state and places its next run after its
last stored run (restart-safe); monitors that are overdue are spread over one interval
instead of all running at once. While running, it polls the configuration revision
and applies added, changed, paused and removed monitors and maintenance windows.

Every monitor's configuration is in memory; checks, state and incidents only for the
monitors this server node holds (``engine.cluster``: all of them on SQLite, its leases on
PostgreSQL, where several nodes share the work). A monitor taken over from another node
starts from its stored state, as after a restart.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.checks.base import HeartbeatSignals
from dozor.core import quorum
from dozor.core.types import MonitorState, Outcome
from dozor.engine import relay, restore
from dozor.engine.cluster import Plan, node_for
from dozor.engine.evaluator import Evaluator
from dozor.engine.ingest import Listener, RegionalCallback, ResultWriter
from dozor.engine.model import ActiveMonitor
from dozor.engine.pings import KINDS as PING_KINDS
from dozor.engine.pings import PingRecorder
from dozor.engine.relay import Listener as RelayListener
from dozor.engine.rollup_job import roll_up
from dozor.engine.runner import Runner
from dozor.engine.scheduler import Job, Scheduler, spread_offset
from dozor.engine.stats import CheckStats
from dozor.outbound import AddressPolicy, Outbound
from dozor.privacy import retention
from dozor.probe.wire import ProbeResult
from dozor.settings import Settings
from dozor.store import monitors as store
from dozor.store import probes as store_probes

log = logging.getLogger(__name__)
STOP_TIMEOUT = 30.0  # seconds the writer gets to store what is queued when stopping
RELAY_EVERY = 5.0  # seconds between relayed successful pings of one monitor
TAKEOVER_SPREAD = 2.0  # seconds over which a dead node's overdue monitors are checked


class Engine:
    def __init__(self, settings: Settings, database: AsyncEngine,
                 outbound: Outbound | None = None) -> None:
        self.settings = settings
        self.database = database
        self.outbound = outbound or Outbound(
            settings.user_agent, policy=AddressPolicy(settings.allows_private_targets))
        self.evaluator = Evaluator()
        self.runner = Runner(self.outbound)
        self.monitors: dict[int, ActiveMonitor] = {}
        self.signals: dict[int, HeartbeatSignals] = {}
        self._by_token: dict[str, int] = {}
        self.pings = PingRecorder(database, self.signals)
        self.cluster = node_for(database, settings.location, settings.node_lease)
        # Probe results and pings another node received for monitors held here.
        self.relay = RelayListener(database, self._relayed_results, self._relayed_ping)
        self._rebalancing = asyncio.Lock()
        self._relayed: dict[int, float] = {}  # monitor id -> when its last ping was relayed
        self.stats = CheckStats()  # read by /metrics at scrape time
        self._revision = -1
        self._tasks: list[asyncio.Task[None]] = []
        # State-change listeners (the alert router) and after-commit callbacks for the writer.
        self.listeners: list[Listener] = []
        self.after_commit: list[Callable[[], None]] = []
        # Given the regional problems each commit changed (ingest.RegionalChange).
        self.regional_committed: list[RegionalCallback] = []
        self.writer: ResultWriter
        self.scheduler: Scheduler
        self._writing: asyncio.Future[None]
        self.started = False

    @property
    def queued_results(self) -> int:
        """Results waiting to be written (none before the engine starts)."""
        writer: ResultWriter | None = getattr(self, "writer", None)
        return writer.queued if writer is not None else 0

    async def start(self) -> None:
        location_id = await ensure_location(self.database, self.settings.location)
        self.writer = ResultWriter(self.database, location_id, self.settings.flush_batch)
        self.writer.listeners.extend(self.listeners)
        self.writer.after_commit.extend(self.after_commit)
        self.writer.regional_committed.extend(self.regional_committed)
        if self.cluster.shared:
            self.writer.fence = self.cluster.fence
        self.scheduler = Scheduler(self._run, self.settings.max_concurrency,
                                   self.settings.per_host_concurrency)
        await self.cluster.start()
        if self.cluster.shared:
            await self.relay.ensure()
        await self.reload()
        s = self.settings
        self._writing = asyncio.ensure_future(
            self.writer.run_forever(s.flush_interval.total_seconds()))
        self._spawn(self.scheduler.run_forever())
        self._spawn(self._every(s.reload_interval, self.reload))
        if self.cluster.shared:  # one node holds everything: nothing to divide
            period = timedelta(seconds=self.cluster.period)
            self._spawn(self._every(period, self.rebalance))
            # Apart from the step: a slow hand-back or take-up must not delay a renewal.
            self._spawn(self._every(period, self.cluster.renew))
        # Installation-wide jobs run on one node (repeating them elsewhere is harmless,
        # only wasted).
        self._spawn(self._every(s.retention_interval, self.prune, leader_only=True))
        self._spawn(self._every(timedelta(minutes=1), self.roll_up, leader_only=True))
        self.started = True

    async def stop(self) -> None:
        """Stop checking, then let the writer store everything measured so far."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.writer.stop()
        try:
            await self.pings.close()
        except Exception:
            log.exception("storing the last heartbeat pings failed")
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await self._writing
                await self.writer.flush()  # whatever the cancelled checks added meanwhile
        except TimeoutError:
            log.error("stopped with %d results unwritten: the database did not answer",
                      self.writer.queued)
        await self.relay.stop()
        await self.cluster.stop()  # after the writer: the next holder reads what it stored
        await self.outbound.close()

    def _spawn(self, work: Awaitable[None]) -> None:
        self._tasks.append(asyncio.ensure_future(work))

    async def _every(self, period: timedelta, action: Callable[[], Awaitable[Any]],
                     leader_only: bool = False) -> None:
        while True:
            await asyncio.sleep(period.total_seconds())
            if leader_only and not self.cluster.leader:
                continue
            try:
                await action()
            except Exception:
                log.exception("periodic %s failed", getattr(action, "__name__", action))

    async def _run(self, job: Job, due: float) -> float:
        monitor = self.monitors.get(job.monitor_id)
        if monitor is None:
            return 60.0
        if not self.cluster.holds(monitor.id):
            return monitor.interval  # its lease ran out unrenewed: another node may check it
        if monitor.push_token and self.cluster.shared:  # pings may reach any node
            await self.pings.refresh(monitor.id)
        started = time.perf_counter()
        outcome = await self.runner.run(monitor, self.signals.get(monitor.id))
        self.stats.record(monitor.kind, outcome.ok, time.perf_counter() - started)
        if self.monitors.get(monitor.id) is not monitor or not self.cluster.holds(monitor.id):
            # Changed or removed while running (it measured the old config), or handed to
            # another node meanwhile (whose state it must not overwrite).
            return monitor.interval
        monitor.last_latency_ms = outcome.latency_ms
        here = self.settings.location
        self.writer.add(self.evaluator.evaluate(monitor, outcome, datetime.now(UTC), here))
        return self.evaluator.next_delay(monitor, here)

    def evaluate_remote(self, monitor_id: int, location: str, outcome: Outcome,
                        at: datetime) -> bool:
        """A probe's result, stored by api.probes, for the monitor's quorum: folded into
        its location's tracker when it is newer than the last from there. False when it
        is not evaluated (no quorum, not running, or an older result)."""
        monitor = self.monitors.get(monitor_id)
        if (not self.started or monitor is None or monitor.quorum is None
                or location not in monitor.locations or not self.cluster.holds(monitor_id)
                or not self.evaluator.is_news(monitor_id, location, at)):
            return False
        if self.evaluator.is_latest(monitor_id, at):  # for /metrics, as a check here
            monitor.last_latency_ms = outcome.latency_ms
        before = self.evaluator.regional.get(monitor_id, ())
        observation = self.evaluator.evaluate(monitor, outcome, at, location,
                                              now=datetime.now(UTC))
        observation.remote = True
        if observation.transitions or observation.regional != before:
            self.writer.add(observation)
        return True

    def held_elsewhere(self, monitor_id: int) -> bool:
        """Whether another server node decides this monitor's state (``engine.relay``)."""
        return self.cluster.shared and not self.cluster.holds(monitor_id)

    def _relayed_results(self, location: str, results: list[ProbeResult]) -> None:
        for result in sorted(results, key=lambda r: r.at_ms):
            self.evaluate_remote(result.monitor_id, location, result.outcome(), result.at)

    def _relayed_ping(self, monitor_id: int, kind: str) -> None:
        if self.cluster.holds(monitor_id) and self._ping_may_change(monitor_id, kind):
            self.scheduler.trigger(monitor_id)  # the check reads the stored pings first

    async def reload(self) -> None:
        """Apply configuration changes made since the last reload (all of it the first time)."""
        async with self.database.connect() as connection:
            revision = await store.current_revision(connection)
            if revision == self._revision:
                return
            first = self._revision < 0
            rows = await store.monitors_to_run(connection, since_revision=None if first
                                               else self._revision)
            # A monitor assigned only to other locations is held, not checked: its state
            # comes from its locations' results (evaluate_remote).
            present = await store.monitor_ids(connection)
            # State only for monitors new here and held here: on PostgreSQL the others are
            # another node's, and those this node claims next are read when taken up.
            new = [r for r in rows if r.id not in self.monitors and self.cluster.keeps(r.id)]
            states = await restore.load_states(connection, [r.id for r in new],
                                               everything=first and not self.cluster.shared)
            windows = await store.list_maintenance(connection)
            views = await restore.load_views(connection, {
                r.id: quorum.fresh_for(r.interval_ms / 1000, r.timeout_ms / 1000)
                for r in new if r.locations})
        self.evaluator.set_windows((w.org_id, store.window_from_row(w)) for w in windows)
        for monitor_id in set(self.monitors) - present:
            self._drop(monitor_id)
        unseen = any(row.id not in self.monitors for row in rows)
        for row in rows:
            self._apply(row, states.get(row.id), views.get(row.id))
        self._revision = revision
        if unseen and self.cluster.shared:  # lease them now rather than at the next step
            await self.rebalance()
        # Monitors live as long as the process: keep them out of the cyclic collector's
        # walks, which otherwise grow with every monitor and cost on every check.
        gc.freeze()

    async def rebalance(self) -> None:
        """Take up the monitors this node now holds, drop the ones it lost, and hand back
        its extra ones once what they measured is stored (``engine.cluster``)."""
        async with self._rebalancing:  # the periodic step and a reload's may meet
            await self._rebalance()

    async def _rebalance(self) -> None:
        plan: Plan = await self.cluster.step()
        for monitor_id in plan.lost:
            self._let_go(monitor_id)
        try:
            await self._hand_back(plan.excess)
            await self._take_up(plan.taken)
        except BaseException:
            # Leased, but not taken up (or not handed back): held no more in memory, so
            # the next step finds them among its leases and tries again.
            self.cluster.let_go(plan.taken | plan.excess)
            raise
        if self.cluster.shared:
            await self.relay.ensure()  # the database may have dropped its connection

    async def _hand_back(self, ids: set[int]) -> None:
        if not ids:
            return
        self.cluster.let_go(ids)  # no check of them starts or lands from here
        for monitor_id in ids:
            self.scheduler.remove(monitor_id)
        await self.writer.flush()
        for monitor_id in ids:
            self._let_go(monitor_id)
        await self.cluster.give_back(ids)

    async def _take_up(self, ids: set[int]) -> None:
        if not ids:
            return
        taken = [self.monitors[i] for i in ids if i in self.monitors]
        async with self.database.connect() as connection:
            states = await restore.load_states(connection, list(ids), everything=False)
            views = await restore.load_views(connection, {
                m.id: quorum.fresh_for(m.interval, m.timeout) for m in taken if m.quorum})
        for monitor in taken:  # the others were created after the last reload: taken there
            # A running node takes over a dead one's monitors, late already; at a start
            # everything is claimed at once, and is spread as after a restart.
            self._hold(monitor, states.get(monitor.id), None, views.get(monitor.id),
                       taken_over=self.started)

    def _let_go(self, monitor_id: int) -> None:
        """Keep the configuration of a monitor another node holds, nothing else."""
        self.scheduler.remove(monitor_id)
        self.evaluator.forget(monitor_id)
        self.writer.forget(monitor_id)

    def _apply(self, row: Any, state: Any | None, views: restore.Views | None = None) -> None:
        try:
            monitor = ActiveMonitor.from_row(row)
        except Exception as error:
            log.error("monitor %s (%s) has an invalid stored config: %s", row.id, row.name, error)
            return
        previous = self.monitors.get(monitor.id)
        if previous is not None and previous.created_at != monitor.created_at:
            self._drop(monitor.id)  # a new monitor under a reused id: nothing carries over
            previous = None
        self.monitors[monitor.id] = monitor
        if monitor.push_token:
            self._by_token[monitor.push_token] = monitor.id
        if previous is not None:
            monitor.last_latency_ms = previous.last_latency_ms
            if previous.push_token and previous.push_token != monitor.push_token:
                self._by_token.pop(previous.push_token, None)  # no longer a heartbeat
        if self.cluster.keeps(monitor.id):  # its lease, whether renewed lately or not
            self._hold(monitor, state, previous, views)
        else:
            self.scheduler.remove(monitor.id)

    def _hold(self, monitor: ActiveMonitor, state: Any | None,
              previous: ActiveMonitor | None, views: restore.Views | None = None,
              taken_over: bool = False) -> None:
        """Check a monitor this node holds: from its stored state (and its locations'
        recent results) when new here."""
        if previous is None and monitor.quorum is not None:
            for location, outcomes in (views or {}).items():
                self.evaluator.replay(monitor, location, outcomes)
        if state is not None and previous is None:  # memory is newer than the database
            monitor.last_latency_ms = state.last_latency_ms
            self.evaluator.trackers[monitor.id] = restore.tracker_from(state)
            if state.incident_id is not None:
                self.writer.open_incidents[monitor.id] = state.incident_id
            if state.regional:  # as stored: what the next decision is compared with
                self.writer.regional[monitor.id] = tuple(state.regional)
                if monitor.quorum is not None:
                    self.evaluator.regional[monitor.id] = tuple(state.regional)
            if monitor.push_token:
                self.signals[monitor.id] = HeartbeatSignals(
                    state.last_ping_at, state.last_start_at, state.last_ping_kind)
        if monitor.quorum is None:  # no locations to disagree (any more): none is kept
            self.evaluator.regional.pop(monitor.id, None)
        self._apply_pause(monitor)
        if monitor.paused or not store.checked_here(monitor.locations or None,
                                                    self.settings.location):
            self.scheduler.remove(monitor.id)
        else:
            self.scheduler.add(monitor.job,
                               self._first_due(monitor, state, previous, taken_over))

    def _apply_pause(self, monitor: ActiveMonitor) -> None:
        paused_now = self.evaluator.state(monitor.id) is MonitorState.PAUSED
        if monitor.paused != paused_now:
            change = self.evaluator.set_paused(monitor, monitor.paused, datetime.now(UTC))
            if change is not None:
                self.writer.add(change)

    def _first_due(self, monitor: ActiveMonitor, state: Any | None,
                   previous: ActiveMonitor | None, taken_over: bool = False) -> float:
        now = self.scheduler.now()
        if previous is not None:  # changed while running: check the new config soon
            return now + spread_offset(monitor.id, min(monitor.interval, 5.0))
        last = state.last_checked_at if state is not None else None
        if last is not None:
            wait: float = (last - datetime.now(UTC)).total_seconds() + monitor.interval
            if 0 <= wait <= monitor.interval:
                return now + wait
            if taken_over:  # from a dead node: late already, so within a few seconds
                return now + spread_offset(monitor.id, min(monitor.interval, TAKEOVER_SPREAD))
        # New, or overdue after a restart (everything is due at once): over an interval.
        return now + spread_offset(monitor.id, monitor.interval)

    def _drop(self, monitor_id: int) -> None:
        monitor = self.monitors.pop(monitor_id, None)
        if monitor and monitor.push_token:
            self._by_token.pop(monitor.push_token, None)
        self.scheduler.remove(monitor_id)
        self.evaluator.forget(monitor_id)
        self.signals.pop(monitor_id, None)
        self.writer.forget(monitor_id)
        self._relayed.pop(monitor_id, None)

    async def record_ping(self, token: str, kind: str = "success") -> bool:
        """A heartbeat ping arrived: False when no monitor has this push token; raises
        PingNotStored when the database did not store it (the job should retry).

        Constant work per ping: a dict lookup, the signals updated in memory, and a share
        of one group commit (see engine.pings for what is stored, and why before the OK).
        """
        if kind not in PING_KINDS:
            raise ValueError(f"unknown ping kind {kind!r}")
        monitor_id = self._by_token.get(token)
        if monitor_id is None:
            return False
        if self.monitors[monitor_id].restricted:
            return True  # the account froze processing: acknowledged, not stored
        await self.pings.record(monitor_id, kind, datetime.now(UTC))
        if self.held_elsewhere(monitor_id):
            await self._relay_ping(monitor_id, kind)
        elif self._ping_may_change(monitor_id, kind):
            self.scheduler.trigger(monitor_id)
        return True

    async def _relay_ping(self, monitor_id: int, kind: str) -> None:
        """Tell the holder (``engine.relay``): a failure always; a success at most every
        few seconds per monitor, since only the holder knows whether it changes anything
        (a down monitor recovers) and a job pinging every second must not cost a notice
        each. The ping is stored already: a notice that cannot be sent is not the job's
        problem, the holder's next check reads it."""
        if kind == "start":
            return  # starts change no state
        now = time.monotonic()
        if kind == "success" and now - self._relayed.get(monitor_id, -RELAY_EVERY) < RELAY_EVERY:
            return
        self._relayed[monitor_id] = now
        try:
            async with self.database.begin() as connection:
                await relay.send_ping(connection, monitor_id, kind)
        except Exception:
            log.warning("could not pass a %s ping of monitor %s to its node", kind,
                        monitor_id, exc_info=True)

    def _ping_may_change(self, monitor_id: int, kind: str) -> bool:
        """Evaluate at once only when the ping can change the state: a failure, or a
        success of a monitor that is not up. A success of an up monitor changes nothing
        the next scheduled check would not see, and checking on every ping would store a
        result per ping (a job pinging every second: sixty rows a minute instead of one)."""
        return kind == "fail" or (kind == "success" and
                                  self.evaluator.state(monitor_id) is not MonitorState.UP)

    async def roll_up(self) -> int:
        """Roll up the hours that have ended (see engine.rollup_job)."""
        return await roll_up(self.database, datetime.now(UTC), self.writer.oldest_unwritten(),
                             keep_raw=self.settings.retention_raw)

    async def prune(self, dry_run: bool = False) -> Any:
        if not dry_run:  # raw results must be in the rollups before they go
            await self.roll_up()
        # Organisations past their date, old messages and sessions, then results and
        # rollups by their windows (privacy.retention).
        return await retention.run(self.database, retention.Windows.from_settings(
            self.settings), datetime.now(UTC), dry_run=dry_run)


async def ensure_location(database: AsyncEngine, name: str) -> int:
    """The id of a location, created on first use."""
    async with database.begin() as connection:
        return await store_probes.ensure_location(connection, name, datetime.now(UTC))
