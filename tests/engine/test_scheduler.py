"""The scheduler on a real event loop, with short intervals and generous tolerances."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from dozor.engine.scheduler import TICK, Job, Scheduler, spread_offset


def test_offsets_spread_consecutive_ids_evenly_over_the_interval() -> None:
    offsets = sorted(spread_offset(i, 60.0) for i in range(1, 1001))
    gaps = [b - a for a, b in zip(offsets, offsets[1:], strict=False)]
    # A thousand monitors over 60 s: no two closer than a few ms, none far apart.
    assert min(gaps) > 0.01 and max(gaps) < 0.2
    assert spread_offset(42, 60.0) == spread_offset(42, 60.0)


async def run_for(scheduler: Scheduler, seconds: float) -> None:
    task = asyncio.create_task(scheduler.run_forever())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_runs_stay_on_their_grid_without_drift() -> None:
    starts: list[float] = []
    scheduler: Scheduler

    async def run(job: Job, due: float) -> float:
        starts.append(scheduler.now())
        await asyncio.sleep(0.03)  # work that would accumulate as drift if anchored on finish
        return 0.1

    scheduler = Scheduler(run, max_concurrency=10, per_host=10)
    first = scheduler.now() + 0.05
    scheduler.add(Job(1, None), first)
    await run_for(scheduler, 1.2)
    assert len(starts) >= 10
    for index, started in enumerate(starts):
        # On the grid: never late by more than a little, early by at most one tick.
        offset = started - (first + index * 0.1)
        assert -TICK - 0.005 < offset < 0.03, (index, offset)


async def test_a_host_never_has_more_than_its_limit_in_flight() -> None:
    in_flight: dict[str | None, int] = defaultdict(int)
    peak: dict[str | None, int] = defaultdict(int)
    done: list[int] = []

    async def run(job: Job, due: float) -> float:
        in_flight[job.host] += 1
        peak[job.host] = max(peak[job.host], in_flight[job.host])
        await asyncio.sleep(0.05)
        in_flight[job.host] -= 1
        done.append(job.monitor_id)
        return 60.0

    scheduler = Scheduler(run, max_concurrency=50, per_host=3)
    now = scheduler.now()
    for i in range(20):
        scheduler.add(Job(i, "slow.example"), now)
    for i in range(20, 30):
        scheduler.add(Job(i, f"host{i}.example"), now)
    await run_for(scheduler, 0.6)
    assert peak["slow.example"] == 3
    assert sorted(done) == list(range(30))  # every parked run ran too
    # The busy host's queue did not hold up the others: all of those ran in the first batch.
    assert set(done[:13]) >= set(range(20, 30))


async def test_the_global_limit_bounds_checks_in_flight() -> None:
    in_flight, peak = 0, 0

    async def run(job: Job, due: float) -> float:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return 60.0

    scheduler = Scheduler(run, max_concurrency=5, per_host=100)
    for i in range(40):
        scheduler.add(Job(i, f"h{i}"), scheduler.now())
    await run_for(scheduler, 0.5)
    assert peak == 5


async def test_removed_jobs_stop_and_triggered_jobs_run_at_once() -> None:
    runs: dict[int, int] = defaultdict(int)

    async def run(job: Job, due: float) -> float:
        runs[job.monitor_id] += 1
        return 0.05

    scheduler = Scheduler(run, max_concurrency=10, per_host=10)
    scheduler.add(Job(1, None), scheduler.now())
    scheduler.add(Job(2, None), scheduler.now() + 100)
    task = asyncio.create_task(scheduler.run_forever())
    await asyncio.sleep(0.2)
    scheduler.remove(1)
    stopped_at = runs[1]
    scheduler.trigger(2)
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert runs[1] == stopped_at
    assert runs[2] >= 2  # triggered now, then on its 50 ms grid


async def test_a_failing_callback_does_not_stop_the_scheduler() -> None:
    runs = 0

    async def run(job: Job, due: float) -> float:
        nonlocal runs
        runs += 1
        raise RuntimeError("boom")

    scheduler = Scheduler(run, max_concurrency=10, per_host=10)
    scheduler.add(Job(1, None), scheduler.now())
    scheduler.add(Job(2, None), scheduler.now())
    await run_for(scheduler, 0.1)
    assert runs == 2


async def test_a_monitor_never_runs_twice_at_once() -> None:
    running, peak, runs = 0, 0, 0

    async def run(job: Job, due: float) -> float:
        nonlocal running, peak, runs
        running += 1
        runs += 1
        peak = max(peak, running)
        await asyncio.sleep(0.2)
        running -= 1
        return 60.0

    scheduler = Scheduler(run, max_concurrency=10, per_host=10)
    scheduler.add(Job(1, None), scheduler.now())
    task = asyncio.create_task(scheduler.run_forever())
    await asyncio.sleep(0.1)
    scheduler.add(Job(1, None), scheduler.now())  # changed config while running
    scheduler.trigger(1)  # and a ping on top
    await asyncio.sleep(0.5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert peak == 1
    assert runs == 2  # the run that waited happened right after, once
