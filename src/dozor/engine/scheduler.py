"""One asyncio loop that starts every monitor's check on time.

- Spread: a new monitor's first run is placed at ``frac(id * golden ratio)`` of its
  interval, so thousands of monitors added at once do not all fire together, and the
  placement is the same after a restart.
- No drift: the next run is the previous *scheduled* time plus the interval, not the
  finish time plus the interval. A run that starts late does not push later runs back.
- Limits: at most ``max_concurrency`` checks in flight, at most ``per_host`` per target
  host. A busy host parks its runs in its own queue without holding a global slot, so
  one slow host never starves the others.
- Live: ``add`` replaces a monitor's schedule, ``remove`` drops it, ``trigger`` runs it
  now; stale heap entries are skipped when popped (lazy deletion). A monitor never runs
  twice at once: a run that falls due while the last one is in flight waits for it.

The run callback returns the delay until the next run (the evaluator decides between
the interval and the shorter retry interval).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

GOLDEN = (math.sqrt(5) - 1) / 2
# Runs due within one tick start together: a few checks in flight at once let the event
# loop batch their I/O (about a third cheaper per check than one at a time), at the
# price of starting some of them up to a tick early.
TICK = 0.05
RunCallback = Callable[["Job", float], Awaitable[float]]


@dataclass(slots=True, eq=False)
class Job:
    """What the scheduler needs to know of a monitor."""

    monitor_id: int
    host: str | None
    generation: int = 0


@dataclass(slots=True)
class LagStats:
    """Scheduler lag (start time minus scheduled time), in seconds, over a bounded window."""

    samples: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    started: int = 0
    total: float = 0.0  # summed lag of every start, for /metrics

    def record(self, lag: float) -> None:
        self.samples.append(lag)
        self.started += 1
        self.total += lag

    def percentile(self, q: float) -> float:
        return quantiles(self.samples, (q,))[0]


def quantiles(samples: Iterable[float], qs: Sequence[float]) -> list[float]:
    """Nearest-rank quantiles of ``samples`` (0.0 for none), sorting once.

    >>> quantiles([0.3, 0.1, 0.2, 0.4], (0.5, 0.99))
    [0.3, 0.4]
    """
    ordered = sorted(samples)
    if not ordered:
        return [0.0 for _ in qs]
    return [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in qs]


def spread_offset(monitor_id: int, interval: float) -> float:
    """Where in its interval a monitor runs: even for consecutive ids, stable over restarts."""
    return ((monitor_id * GOLDEN) % 1.0) * interval


class Scheduler:
    def __init__(self, run: RunCallback, max_concurrency: int, per_host: int) -> None:
        self._run = run
        self._loop = asyncio.get_running_loop()
        self._heap: list[tuple[float, int, Job, int]] = []
        self._jobs: dict[int, Job] = {}
        self._sequence = 0
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._per_host = per_host
        self._running_by_host: dict[str | None, int] = {}
        self._parked: dict[str | None, deque[tuple[Job, float, int]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[int] = set()
        self._deferred: dict[int, float] = {}  # due runs of monitors still running
        self._last_wake = -TICK
        self.lag = LagStats()

    def now(self) -> float:
        return self._loop.time()

    def add(self, job: Job, due: float) -> None:
        """Schedule (or reschedule) a monitor's next run at loop time ``due``."""
        self._jobs[job.monitor_id] = job
        self._push(job, due)

    def remove(self, monitor_id: int) -> None:
        self._jobs.pop(monitor_id, None)

    def trigger(self, monitor_id: int) -> None:
        """Run a monitor as soon as a slot is free (e.g. a heartbeat just reported a failure)."""
        job = self._jobs.get(monitor_id)
        if job is not None:
            self._push(job, self.now())

    def __contains__(self, monitor_id: int) -> bool:
        return monitor_id in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    @property
    def in_flight(self) -> int:
        """Monitors whose check is running now."""
        return len(self._running)

    def _push(self, job: Job, due: float) -> None:
        # Each push supersedes the job's earlier entries: only the newest one runs.
        job.generation += 1
        self._sequence += 1
        heapq.heappush(self._heap, (due, self._sequence, job, job.generation))
        if self._heap[0][2] is job:
            self._wake.set()

    async def run_forever(self) -> None:
        try:
            while True:
                await self._wait_for_due()
                await self._start_due()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _wait_for_due(self) -> None:
        while True:
            self._wake.clear()
            delay = None
            if self._heap:
                # Wake a tick before the next run is due, but at most once a tick.
                now = self.now()
                delay = max(self._heap[0][0] - TICK, self._last_wake + TICK) - now
            if delay is not None and delay <= 0:
                return
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                return

    async def _start_due(self) -> None:
        self._last_wake = self.now()
        horizon = self._last_wake + TICK
        while self._heap and self._heap[0][0] <= horizon:
            due, _, job, generation = heapq.heappop(self._heap)
            if not self._current(job, generation):
                continue  # removed or rescheduled since this entry was pushed
            if job.monitor_id in self._running:  # changed or triggered mid-run: after it
                self._deferred[job.monitor_id] = due
                continue
            await self._slots.acquire()
            self._dispatch(job, due, generation)

    def _current(self, job: Job, generation: int) -> bool:
        return self._jobs.get(job.monitor_id) is job and job.generation == generation

    def _dispatch(self, job: Job, due: float, generation: int) -> None:
        """Start a run holding one global slot, or park it behind its busy host."""
        if self._running_by_host.get(job.host, 0) >= self._per_host:
            self._parked.setdefault(job.host, deque()).append((job, due, generation))
            self._slots.release()
            return
        self._running_by_host[job.host] = self._running_by_host.get(job.host, 0) + 1
        task = self._loop.create_task(self._execute(job, due, generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, job: Job, due: float, generation: int) -> None:
        host = job.host
        while True:
            # Removed or superseded between dispatch and now: skip; the newer entry runs.
            if self._current(job, generation):
                await self._run_once(job, due, generation)
            if not (upcoming := self._next_parked(host)):
                break
            # Hand this task's host and global slots straight to the next parked run.
            job, due, generation = upcoming
        self._running_by_host[host] -= 1
        self._slots.release()

    async def _run_once(self, job: Job, due: float, generation: int) -> None:
        self.lag.record(max(0.0, self.now() - due))
        self._running.add(job.monitor_id)
        try:
            delay = await self._run(job, due)
        except Exception:  # the callback guards checks; this guards the scheduler
            log.exception("run of monitor %s failed", job.monitor_id)
            delay = 60.0
        finally:
            self._running.discard(job.monitor_id)
        deferred = self._deferred.pop(job.monitor_id, None)
        current = self._jobs.get(job.monitor_id)
        if deferred is not None and current is not None:
            self._push(current, max(deferred, self.now()))  # the run that waited for this
        elif self._current(job, generation):  # else removed or replaced meanwhile
            self._reschedule(job, due, delay)

    def _next_parked(self, host: str | None) -> tuple[Job, float, int] | None:
        parked = self._parked.get(host)
        while parked:
            job, due, generation = parked.popleft()
            if self._current(job, generation):
                return job, due, generation
        return None

    def _reschedule(self, job: Job, due: float, delay: float) -> None:
        next_due = due + delay
        now = self.now()
        if next_due < now:  # late by more than a whole interval: skip the missed runs
            next_due += math.ceil((now - next_due) / delay) * delay
        self._push(job, next_due)
