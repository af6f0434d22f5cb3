"""The server's side of remote probes on both databases: probe tokens, the monitors a
probe is given, and the results it delivers, stored under its location exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy import func, select, update

from dozor.engine.model import ActiveMonitor
from dozor.engine.rollup_job import roll_up
from dozor.privacy import restriction
from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.api.conftest import Person
from tests.api.seed import database
from tests.probe.server_helpers import (
    add_monitor,
    add_probe,
    bearer,
    location_id,
    result,
    revoke,
)

MONITORS, RESULTS = "/probe/v1/monitors", "/probe/v1/results"


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


async def test_a_probe_token_works_until_revoked_and_opens_nothing_else(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    token = await add_probe(database_url, "fra-1", "fra")
    assert (await client.get(MONITORS, headers=bearer(token))).status_code == 200
    for headers in ({}, owner.headers, bearer("dzp_not-a-token")):
        refused = await client.get(MONITORS, headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        posted = await client.post(RESULTS, headers=headers, json={"results": [],
                                                                   "dropped": 0})
        assert posted.status_code == 401
    # A probe's token opens nothing of the user API.
    for path in ("/api/v1/monitors", "/api/v1/account", "/api/v1/tokens"):
        assert (await client.get(path, headers=bearer(token))).status_code == 401
    await revoke(database_url, "fra-1")
    assert (await client.get(MONITORS, headers=bearer(token))).status_code == 401
    assert (await client.post(RESULTS, headers=bearer(token),
                              json={"results": [], "dropped": 0})).status_code == 401


async def test_a_probe_gets_the_runnable_monitors_of_its_location_only(
        client: httpx.AsyncClient, owner: Person, stranger: Person,
        database_url: str) -> None:
    token = await add_probe(database_url, "fra-1", "fra")
    mine = await add_monitor(client, owner.headers, "shop", locations=["waw", "fra"])
    await add_monitor(client, owner.headers, "elsewhere", locations=["waw"])
    await add_monitor(client, owner.headers, "local-only")
    await add_monitor(client, owner.headers, "paused", locations=["fra"], paused=True)
    beat = await add_monitor(client, owner.headers, "cron", kind="heartbeat", period="1h")
    await add_monitor(client, stranger.headers, "frozen", locations=["fra"])
    async with database(database_url) as connection:  # stored by hand: the API refuses it
        await connection.execute(update(t.monitors).where(t.monitors.c.id == beat)
                                 .values(locations=["fra"]))
        await restriction.restrict(connection, stranger.org_id, now=datetime.now(UTC))
    answer = await client.get(MONITORS, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["location"] == "fra" and answer.headers["etag"] == f'"{body["revision"]}"'
    assert [m["id"] for m in body["monitors"]] == [mine]
    item = body["monitors"][0]
    assert item["paused"] is False and item["push_token"] is None
    built = ActiveMonitor.from_row(SimpleNamespace(
        **item | {"created_at": datetime.fromisoformat(item["created_at"])}))
    assert (built.id, built.kind, built.interval) == (mine, "http", 60.0)
    assert built.config.target_host() == "shop.example.com"

    etag = answer.headers["etag"]
    same = await client.get(MONITORS, headers=bearer(token) | {"If-None-Match": etag})
    assert same.status_code == 304 and same.headers["etag"] == etag
    changed = await client.patch(f"/api/v1/monitors/{mine}", json={"interval": "2m"},
                                 headers=owner.headers | {"If-Match": item_version(
                                     await client.get(f"/api/v1/monitors/{mine}",
                                                      headers=owner.headers))})
    assert changed.status_code == 200, changed.text
    fresh = await client.get(MONITORS, headers=bearer(token) | {"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    assert fresh.json()["monitors"][0]["interval_ms"] == 120_000


def item_version(answer: httpx.Response) -> str:
    return str(answer.headers["etag"])


async def test_results_are_stored_under_the_probes_location_once(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    token = await add_probe(database_url, "fra-1", "fra")
    at = now_ms()
    shop = await add_monitor(client, owner.headers, "shop", locations=["fra"])
    other = await add_monitor(client, owner.headers, "other", locations=["waw"])
    batch = {"results": [result(shop, at - 60_000), result(shop, at - 2_000, ok=False),
                         result(other, at - 1_000), result(999_999, at - 1_000)],
             "dropped": 3, "version": "0.9.0"}
    first = await client.post(RESULTS, headers=bearer(token), json=batch)
    assert first.status_code == 200, first.text
    assert first.json() == {"stored": 2, "duplicates": 0, "skipped": 2}
    again = await client.post(RESULTS, headers=bearer(token), json=batch)
    assert again.json() == {"stored": 0, "duplicates": 2, "skipped": 2}

    fra = await location_id(database_url, "fra")
    stored = await _results(database_url)
    assert [(r.monitor_id, r.at, r.location_id, r.status) for r in stored] == [
        (shop, at - 60_000, fra, 1), (shop, at - 2_000, fra, 0)]
    assert stored[0].latency_ms == 12 and stored[0].detail is None
    assert stored[1].error == 3 and "connection refused" in stored[1].detail
    probe = await _probe(database_url)
    assert (probe.last_version, probe.dropped) == ("0.9.0", 3)
    assert probe.last_result_at == datetime.fromtimestamp((at - 1_000) / 1000, UTC)
    assert 1_000 <= probe.last_lag_ms < 60_000
    assert probe.last_seen_at > datetime.now(UTC) - timedelta(minutes=1)
    # Over the API, the owner reads them with their location.
    listed = await client.get(f"/api/v1/monitors/{shop}/results", headers=owner.headers)
    assert {r["location_id"] for r in listed.json()["items"]} == {fra}


async def test_a_monitor_checked_by_probes_alone_shows_its_latest_check(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    fra = await add_probe(database_url, "fra-1", "fra")
    waw = await add_probe(database_url, "waw-1", "waw")
    at = now_ms()
    shop = await add_monitor(client, owner.headers, "shop", locations=["fra", "waw"])

    async def deliver(token: str, *results: dict[str, Any]) -> None:
        sent = await client.post(RESULTS, headers=bearer(token),
                                 json={"results": list(results), "dropped": 0})
        assert sent.status_code == 200, sent.text

    async def last_check() -> tuple[Any, ...]:
        body = (await client.get(f"/api/v1/monitors/{shop}", headers=owner.headers)).json()
        return body["last_checked_at"], body["last_latency_ms"], body["last_message"]

    assert await last_check() == (None, None, None)
    await deliver(fra, result(shop, at - 20_000, latency_ms=80.0),
                  result(shop, at - 10_000, ok=False))
    refused = datetime.fromtimestamp((at - 10_000) / 1000, UTC).isoformat()
    assert await last_check() == (refused, None, "connection refused")
    # A probe's buffer delivered late is older than what is shown: it changes nothing.
    await deliver(waw, result(shop, at - 30_000, latency_ms=40.0))
    assert await last_check() == (refused, None, "connection refused")
    await deliver(waw, result(shop, at - 5_000, latency_ms=40.0))
    assert await last_check() == (datetime.fromtimestamp((at - 5_000) / 1000, UTC)
                                  .isoformat(), 40.0, None)


async def test_a_full_batch_of_distinct_monitors_is_taken(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    from dozor.api.probes import MAX_RESULTS

    token = await add_probe(database_url, "fra-1", "fra")
    at = now_ms()
    shop = await add_monitor(client, owner.headers, "shop", locations=["fra"])
    # As many monitors as a request may name (the server looks each one up at once).
    batch = [result(shop, at)] + [result(shop + n, at) for n in range(1, MAX_RESULTS)]
    sent = await client.post(RESULTS, headers=bearer(token),
                             json={"results": batch, "dropped": 0})
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"stored": 1, "duplicates": 0, "skipped": MAX_RESULTS - 1}


async def test_a_bad_field_is_named_and_nothing_is_stored(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    token = await add_probe(database_url, "fra-1", "fra")
    at = now_ms()
    shop = await add_monitor(client, owner.headers, "shop", locations=["fra"])
    good = result(shop, at)
    cases: list[tuple[Any, str]] = [
        ({"results": [good, result(shop, -1)], "dropped": 0}, "results.1.at_ms"),
        ({"results": [good, result(shop, at, colour="red")], "dropped": 0},
         "results.1.colour"),
        ({"results": [good], "dropped": -1}, "dropped"),
        ({"results": [good]}, "dropped"),
        ({"results": [result(shop, 2**60)], "dropped": 0}, "results.0.at_ms"),
        ({"results": [result(shop, at, latency_ms=1e300)], "dropped": 0},
         "results.0.latency_ms"),
        ({"results": [good] * 5_001, "dropped": 0}, "results"),
    ]
    for body, field in cases:
        refused = await client.post(RESULTS, headers=bearer(token), json=body)
        assert refused.status_code == 422, (field, refused.text)
        assert field in [e["field"] for e in refused.json()["errors"]], refused.text
    not_json = await client.post(RESULTS, headers=bearer(token) | {
        "Content-Type": "application/json"},
        content=b'{"results": [{"monitor_id": 1, "at_ms": 1, "ok": true, '
                b'"latency_ms": NaN}], "dropped": 0}')
    assert not_json.status_code == 422
    assert await _results(database_url) == []
    assert (await _probe(database_url)).last_seen_at is None  # the refused changed nothing


async def test_the_rollup_job_rolls_up_a_probes_results_per_location(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    token = await add_probe(database_url, "fra-1", "fra")
    at = now_ms()
    shop = await add_monitor(client, owner.headers, "shop", locations=["fra"])
    hour_ms = (at // 3_600_000 - 3) * 3_600_000  # an hour that ended
    batch = [result(shop, hour_ms + i * 60_000, ok=i % 4 != 0) for i in range(8)]
    posted = await client.post(RESULTS, headers=bearer(token),
                               json={"results": batch, "dropped": 0})
    assert posted.json()["stored"] == 8
    engine = create_engine(database_url)
    try:
        assert await roll_up(engine, datetime.now(UTC)) >= 1
        async with engine.connect() as connection:
            rows = (await connection.execute(
                select(t.rollups_hourly).where(t.rollups_hourly.c.monitor_id == shop))).all()
    finally:
        await engine.dispose()
    fra = await location_id(database_url, "fra")
    assert [(r.location_id, r.bucket, r.checks, r.up) for r in rows] == [
        (fra, hour_ms // 1000, 8, 6)]


async def _results(database_url: str) -> list[Any]:
    async with database(database_url) as connection:
        return list((await connection.execute(
            select(t.results).order_by(t.results.c.monitor_id, t.results.c.at))).all())


async def _probe(database_url: str) -> Any:
    async with database(database_url) as connection:
        assert await connection.scalar(select(func.count()).select_from(t.probes)) == 1
        return (await connection.execute(select(t.probes))).one()
