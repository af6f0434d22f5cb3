"""Results a probe delivers after their hour was rolled up (from its buffer, after the
server was away) still count: the rollup job makes the hour and its day again, a resent
batch changes nothing, a crash in between loses nothing, and results too old for that
are skipped. Both databases, through the real ``POST /probe/v1/results``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, select

from dozor.core.rollups import DAY, HOUR, Rollup
from dozor.engine import rollup_job
from dozor.engine.rollup_job import roll_up
from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.api.conftest import Person
from tests.api.seed import database
from tests.probe.server_helpers import add_monitor, add_probe, bearer, location_id, result

RESULTS = "/probe/v1/results"


def rolled_hour() -> int:
    """An hour two days ago (epoch seconds): it and its day are rolled up whenever the
    test runs."""
    today = int(datetime.now(UTC).timestamp()) // DAY * DAY
    return today - 2 * DAY + 10 * HOUR


def minutes(monitor: int, hour: int, which: range, down: set[int]) -> list[dict[str, Any]]:
    """A result at each of these minutes of ``hour``, down at those in ``down``."""
    return [result(monitor, (hour + m * 60) * 1000, ok=m not in down, latency_ms=10.0 + m)
            for m in which]


def expected(*batches: list[dict[str, Any]]) -> Rollup:
    figures = Rollup()
    for batch in batches:
        for r in batch:
            figures.add(r["ok"], round(r["latency_ms"]) if r["latency_ms"] else None)
    return figures


async def post(client: httpx.AsyncClient, token: str, results: list[dict[str, Any]]
               ) -> dict[str, int]:
    answer = await client.post(RESULTS, headers=bearer(token),
                               json={"results": results, "dropped": 0})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def roll(database_url: str) -> None:
    engine = create_engine(database_url)  # as a server (re)started after a crash would
    try:
        await roll_up(engine, datetime.now(UTC), keep_raw=timedelta(days=14))
    finally:
        await engine.dispose()


async def rollups(database_url: str, table: Table, monitor: int) -> list[tuple[Any, ...]]:
    c = table.c
    async with database(database_url) as connection:
        return [tuple(row) for row in await connection.execute(
            select(c.bucket, c.location_id, c.checks, c.up, c.timed, c.latency_sum,
                   c.latency_min, c.latency_max, c.histogram)
            .where(c.monitor_id == monitor).order_by(c.bucket))]


def row(bucket: int, location: int, r: Rollup) -> tuple[Any, ...]:
    return (bucket, location, r.checks, r.up, r.timed, r.latency_sum, r.latency_min,
            r.latency_max, r.histogram.encode())


async def late_hours(database_url: str) -> list[tuple[Any, ...]]:
    c = t.late_hours.c
    async with database(database_url) as connection:
        return [tuple(r) for r in await connection.execute(
            select(c.bucket, c.monitor_id, c.location_id).order_by(c.bucket))]


async def uptime(client: httpx.AsyncClient, owner: Person, monitor: int, start: int,
                 end: int) -> dict[str, Any]:
    iso = {"start": datetime.fromtimestamp(start, UTC).isoformat(),
           "end": datetime.fromtimestamp(end, UTC).isoformat()}
    answer = await client.get(f"/api/v1/monitors/{monitor}/uptime", params=iso,
                              headers=owner.headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["range"])


async def test_results_delivered_after_their_hour_was_rolled_up_are_in_its_rollups(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    token = await add_probe(database_url, "fra-1", "fra")
    shop = await add_monitor(client, owner.headers, "shop", locations=["fra"])
    fra = await location_id(database_url, "fra")
    hour, day = rolled_hour(), rolled_hour() // DAY * DAY
    on_time = minutes(shop, hour, range(0, 60, 2), down={4})
    assert (await post(client, token, on_time))["stored"] == 30
    await roll(database_url)
    assert await rollups(database_url, t.rollups_hourly, shop) == [
        row(hour, fra, expected(on_time))]

    # The probe lost the server for a while; its buffer arrives now: the odd minutes of
    # that hour and the start of the next, both rolled up long ago.
    late = minutes(shop, hour, range(1, 60, 2), down={5, 7})
    next_hour = minutes(shop, hour + HOUR, range(0, 3), down=set())
    first = await post(client, token, late + next_hour)
    assert first == {"stored": 33, "duplicates": 0, "skipped": 0}
    assert await late_hours(database_url) == [(hour, shop, fra), (hour + HOUR, shop, fra)]
    # Until the job runs, uptime leaves them out: it reads the rollups.
    assert (await uptime(client, owner, shop, hour, hour + HOUR))["checks"] == 30

    await roll(database_url)
    assert await rollups(database_url, t.rollups_hourly, shop) == [
        row(hour, fra, expected(on_time, late)), row(hour + HOUR, fra, expected(next_hour))]
    whole_day = expected(on_time, late, next_hour)
    assert await rollups(database_url, t.rollups_daily, shop) == [row(day, fra, whole_day)]
    assert await late_hours(database_url) == []
    figures = await uptime(client, owner, shop, day, day + DAY)  # read from the daily rollup
    assert (figures["checks"], figures["up"]) == (63, 60)
    assert figures["latency_ms"]["avg"] == pytest.approx(whole_day.latency_avg)
    assert figures["latency_ms"]["max"] == 10 + 59
    assert (await uptime(client, owner, shop, hour, hour + HOUR))["checks"] == 60

    # The same batch again (the probe never heard the answer): nothing changes.
    rolled = [await rollups(database_url, table, shop)
              for table in (t.rollups_hourly, t.rollups_daily)]
    again = await post(client, token, late + next_hour)
    assert again == {"stored": 0, "duplicates": 33, "skipped": 0}
    assert await late_hours(database_url) == []
    await roll(database_url)
    assert [await rollups(database_url, table, shop)
            for table in (t.rollups_hourly, t.rollups_daily)] == rolled


async def test_a_crash_before_the_hour_is_made_again_leaves_it_to_the_next_run(
        client: httpx.AsyncClient, owner: Person, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    token = await add_probe(database_url, "fra-1", "fra")
    shop = await add_monitor(client, owner.headers, "shop", locations=["fra"])
    fra = await location_id(database_url, "fra")
    hour = rolled_hour()
    on_time = minutes(shop, hour, range(0, 30), down=set())
    await post(client, token, on_time)
    await roll(database_url)
    late = minutes(shop, hour, range(30, 60), down={40})
    await post(client, token, late)

    def crash(*args: Any) -> None:
        raise RuntimeError("the server died here")

    monkeypatch.setattr(rollup_job, "_write_pairs", crash)
    with pytest.raises(RuntimeError):
        await roll(database_url)
    assert await late_hours(database_url) == [(hour, shop, fra)]  # still recorded
    assert await rollups(database_url, t.rollups_hourly, shop) == [
        row(hour, fra, expected(on_time))]

    monkeypatch.undo()
    await roll(database_url)  # the next run, in a new process
    assert await rollups(database_url, t.rollups_hourly, shop) == [
        row(hour, fra, expected(on_time, late))]
    assert await late_hours(database_url) == []


async def test_results_too_old_for_their_hour_to_be_rolled_up_again_are_skipped(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    # Raw results are kept 14 days (the default): a result from before that could only be
    # rolled up from an hour the prune has taken part of, so it is not stored.
    token = await add_probe(database_url, "fra-1", "fra")
    shop = await add_monitor(client, owner.headers, "shop", locations=["fra"])
    now = datetime.now(UTC)
    too_old = int((now - timedelta(days=14)).timestamp() * 1000)
    in_time = int((now - timedelta(days=13)).timestamp() * 1000)
    answer = await post(client, token, [result(shop, too_old), result(shop, in_time)])
    assert answer == {"stored": 1, "duplicates": 0, "skipped": 1}
    async with database(database_url) as connection:
        stored = (await connection.execute(select(t.results.c.at))).scalars().all()
    assert stored == [in_time]
