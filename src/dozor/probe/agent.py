"""The probe agent: checks the monitors its server assigns, and reports what it measured.

Four loops share one event loop:

- **sync** asks the server for the assignment every ``sync_interval`` (with the revision
  it holds, so an unchanged one costs a ``304``) and applies it to the scheduler as the
  engine applies a reload: a new monitor runs first at its spread offset, a changed one
  soon, a removed one stops. An unreachable server keeps the assignment (a probe goes
  on measuring while its server is away, and keeps asking every ``sync_interval``); the
  first answer after that wakes the sender out of its backoff; a revoked token stops
  the agent.
- **the scheduler** runs each check through the runner; the next run is after the
  retry interval if the check failed, else the interval (states are the server's work).
- **flush** moves measured results into the on-disk buffer every ``flush_interval`` (or
  at ``flush_batch`` results) and wakes the sender.
- **the sender** delivers the buffer oldest first, so results left by a previous run
  go before new ones.

    >>> async def probe(config: ProbeConfig, stop: asyncio.Event) -> None:
    ...     await Agent(config).run(stop)  # raises Refused if the server will not have it
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from dozor.checks import receives_pings
from dozor.engine.model import ActiveMonitor
from dozor.engine.runner import GRACE, Runner
from dozor.engine.scheduler import Job, Scheduler, spread_offset
from dozor.outbound import AddressPolicy, Outbound
from dozor.probe import assignment
from dozor.probe.assignment import Assignment, Refused, Unreachable
from dozor.probe.buffer import ResultBuffer
from dozor.probe.sender import Backoff, NotDelivered, Sender
from dozor.probe.wire import ProbeResult

log = logging.getLogger(__name__)
OUTBOX = "probe-outbox.db"
SESSION_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    server: str
    token: str
    data_dir: Path
    location: str | None = None  # None: whichever the server assigns the token to
    sync_interval: float = 5.0
    flush_interval: float = 0.5
    flush_batch: int = 500
    max_concurrency: int = 500
    per_host: int = 20
    user_agent: str = "Dozor/0.1 (uptime monitor)"
    allow_private: bool = True
    retry_first: float = 1.0  # backoff while the server is away, as the sender's
    retry_most: float = 60.0
    last_delivery: float = 5.0  # seconds the last delivery gets when stopping


class Agent:
    def __init__(self, config: ProbeConfig, outbound: Outbound | None = None) -> None:
        self.config = config
        self.outbound = outbound or Outbound(
            config.user_agent, policy=AddressPolicy(config.allow_private))
        self.runner = Runner(self.outbound)
        self.buffer = ResultBuffer(config.data_dir / OUTBOX)
        self.monitors: dict[int, ActiveMonitor] = {}
        self.revision: int | None = None  # of the assignment held
        self.location: str | None = None  # the server's name for this probe's location
        self.failure: Refused | None = None  # why the agent stopped by itself
        self.finished = asyncio.Event()  # set on such a stop
        self.measured = 0
        self._pending: list[ProbeResult] = []
        self._full = asyncio.Event()  # flush_batch results are pending
        self._closing = False
        self._checking = 0  # checks in flight
        self._idle = asyncio.Event()  # set while none is
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self.scheduler: Scheduler
        self.sender: Sender
        self._session: aiohttp.ClientSession

    def _backoff(self) -> Backoff:
        return Backoff(first=self.config.retry_first, most=self.config.retry_most)

    async def start(self) -> None:
        await self.buffer.open()
        if self.buffer.size:
            log.info("%d results from a previous run wait for delivery", self.buffer.size)
        self._session = aiohttp.ClientSession(timeout=SESSION_TIMEOUT)
        self.sender = Sender(self.buffer, self._session, self.config.server,
                             self.config.token, backoff=self._backoff())
        self.scheduler = Scheduler(self._run, self.config.max_concurrency,
                                   self.config.per_host)
        # In the order stop() takes them.
        for work in (self._sync_forever(), self._flush_forever(), self.sender.run_forever(),
                     self.scheduler.run_forever()):
            self._tasks.append(asyncio.ensure_future(work))

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set or the server refuses the probe (raises Refused)."""
        await self.start()
        try:
            stopping = asyncio.ensure_future(stop.wait())
            refused = asyncio.ensure_future(self.finished.wait())
            await asyncio.wait((stopping, refused), return_when=asyncio.FIRST_COMPLETED)
            for waiter in (stopping, refused):
                waiter.cancel()
        finally:
            await self.stop()
        if self.failure is not None:
            raise self.failure

    async def stop(self) -> None:
        """Stop checking, keep every result measured, and try to deliver them once more."""
        sync, flush, sending, scheduling = self._tasks
        sync.cancel()
        await self._drain(scheduling)
        self._closing = True  # the flush loop stores what is pending and ends
        self._full.set()
        await asyncio.gather(sync, flush, scheduling, return_exceptions=True)
        await self._stop_sender(sending)
        self._tasks.clear()
        await self._flush()  # in case the flush loop failed
        await self._deliver_last()
        await self._session.close()
        await self.outbound.close()
        await self.buffer.close()

    async def _stop_sender(self, sending: asyncio.Task[None]) -> None:
        """Cancel the sender between batches, not in the middle of one (bounded)."""
        try:
            async with asyncio.timeout(self.config.last_delivery):
                await self.sender.sending.acquire()
        except TimeoutError:
            pass
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        if self.sender.sending.locked():
            self.sender.sending.release()

    async def _drain(self, scheduling: asyncio.Task[None]) -> None:
        """Start nothing new; let the checks in flight end (each within its timeout)."""
        for monitor_id in list(self.monitors):
            self.scheduler.remove(monitor_id)
        longest = max((m.timeout for m in self.monitors.values()), default=0.0) + GRACE
        try:
            async with asyncio.timeout(longest):
                await self._idle.wait()
        except TimeoutError:
            pass
        scheduling.cancel()  # and with it whatever still runs past its timeout

    async def _deliver_last(self) -> None:
        try:
            async with asyncio.timeout(self.config.last_delivery):
                while await self.sender.send_once():
                    pass
        except (NotDelivered, TimeoutError) as error:
            log.warning("stopping with %d results undelivered (kept in %s for the next "
                        "start): %s", self.buffer.size, self.buffer.path, error)

    # -- assignment --

    async def _sync_forever(self) -> None:
        backoff = self._backoff()
        while True:
            try:
                await self.sync_once()
            except Unreachable as error:
                # One small GET per interval is no burden on a server that is coming
                # back, and finding it soon is what lets the buffer drain soon.
                backoff.next_wait()  # counts the failures, for the log
                wait = self.config.sync_interval
                if backoff.worth_telling:
                    log.warning("%s; checking %d monitors as assigned before (next try "
                                "in %.0f s)", error, len(self.monitors), wait)
                await asyncio.sleep(wait)
                continue
            except Refused as error:
                log.error("%s", error)
                self.failure = error
                self.finished.set()
                return
            if backoff.failures:
                self.sender.server_back()
            backoff.reset()
            await asyncio.sleep(self.config.sync_interval)

    async def sync_once(self) -> None:
        """Fetch the assignment and apply it if it changed. Raises Refused, Unreachable."""
        fetched = await assignment.fetch(self._session, self.config.server,
                                         self.config.token, self.revision)
        if fetched is None:
            return
        wanted = self.config.location
        if wanted is not None and fetched.location != wanted:
            raise Refused(f"this probe was started for location {wanted!r}, but the "
                          f"server has its token for location {fetched.location!r}")
        if fetched.location != self.location:
            log.info("checking for location %r", fetched.location)
        self.location = fetched.location
        self.apply(fetched)

    def apply(self, fetched: Assignment) -> None:
        """Apply an assignment: added and changed monitors scheduled, removed ones stopped."""
        for monitor_id in set(self.monitors) - {m.id for m in fetched.monitors}:
            self.monitors.pop(monitor_id)
            self.scheduler.remove(monitor_id)
        for row in fetched.monitors:
            previous = self.monitors.get(row.id)
            if previous is None or previous.revision != row.revision or \
                    previous.created_at != row.created_at:
                self._apply(row, previous)
        self.revision = fetched.revision

    def _apply(self, row: Any, previous: ActiveMonitor | None) -> None:
        if receives_pings(row.kind):
            log.error("monitor %s is a %s monitor: pings reach the server, not a probe",
                      row.id, row.kind)
            return
        try:
            monitor = ActiveMonitor.from_row(row)
        except Exception as error:
            log.error("monitor %s has a config this probe cannot run: %s", row.id, error)
            return
        if previous is not None and previous.created_at != monitor.created_at:
            previous = None  # a new monitor under a reused id
        self.monitors[monitor.id] = monitor
        if monitor.paused:
            self.scheduler.remove(monitor.id)
            return
        now = self.scheduler.now()
        # As the engine: a changed monitor is checked again soon, a new one at its offset.
        spread = min(monitor.interval, 5.0) if previous is not None else monitor.interval
        self.scheduler.add(monitor.job, now + spread_offset(monitor.id, spread))

    # -- checking --

    async def _run(self, job: Job, due: float) -> float:
        monitor = self.monitors.get(job.monitor_id)
        if monitor is None:
            return 60.0
        at_ms = time.time_ns() // 1_000_000
        self._checking += 1
        self._idle.clear()
        try:
            outcome = await self.runner.run(monitor)
        finally:
            self._checking -= 1
            if not self._checking:
                self._idle.set()
        if self.monitors.get(monitor.id) is not monitor:
            return monitor.interval  # changed or removed while running: measured the old config
        self._pending.append(ProbeResult.of(monitor.id, at_ms, outcome))
        self.measured += 1
        if len(self._pending) >= self.config.flush_batch:
            self._full.set()
        return monitor.interval if outcome.ok else monitor.retry_interval

    async def _flush_forever(self) -> None:
        while not self._closing:
            try:
                async with asyncio.timeout(self.config.flush_interval):
                    await self._full.wait()
            except TimeoutError:
                pass
            try:
                await self._flush()
            except Exception:  # the disk: keep the results in memory and try again
                log.exception("keeping results in the buffer file failed")

    async def _flush(self) -> None:
        self._full.clear()
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self.buffer.add(batch)
        except Exception:
            self._pending[:0] = batch
            raise
        self.sender.wake.set()
