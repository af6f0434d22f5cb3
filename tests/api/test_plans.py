"""Plan limits over the API: the shortest interval and the number of monitors, for one
monitor and for a bulk apply, and the free plan's limits once a trial has ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.api.conftest import Person

YAML = {"Content-Type": "application/yaml"}


def monitors_yaml(count: int, interval: str) -> str:
    return "monitors:\n" + "".join(
        f"  - {{name: m{i}, kind: tcp, host: 127.0.0.1, port: 9, interval: {interval}}}\n"
        for i in range(count))


async def set_organisation(database_url: str, org_id: int, **values: object) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(update(t.organizations)
                                 .where(t.organizations.c.id == org_id).values(**values))
    await engine.dispose()


async def names(client: httpx.AsyncClient, person: Person) -> list[str]:
    listed = await client.get("/api/v1/monitors?limit=200", headers=person.headers)
    return [m["name"] for m in listed.json()["items"]]


async def test_a_bulk_apply_keeps_to_the_shortest_interval(client: httpx.AsyncClient,
                                                          stranger: Person) -> None:
    document = monitors_yaml(1, "1m") + "  - {name: fast, kind: tcp, host: 127.0.0.1, " \
        "port: 9, interval: 10s}\n"
    answer = await client.post("/api/v1/monitors/apply", content=document,
                               headers=stranger.headers | YAML)
    assert answer.status_code == 403, answer.text
    assert "the trial plan checks at most every 30s" in answer.text
    assert answer.json()["errors"] == [{"field": "monitors[1].interval",
                                        "message": "shorter than the plan allows"}]
    assert await names(client, stranger) == []


async def test_a_bulk_apply_keeps_to_the_number_of_monitors(
        client: httpx.AsyncClient, stranger: Person, database_url: str) -> None:
    await set_organisation(database_url, stranger.org_id, plan="free")
    over = await client.post("/api/v1/monitors/apply", content=monitors_yaml(51, "5m"),
                             headers=stranger.headers | YAML)
    assert over.status_code == 403
    assert "the free plan allows 50 monitors; this would make 51" in over.text
    assert await names(client, stranger) == []
    fits = await client.post("/api/v1/monitors/apply", content=monitors_yaml(50, "5m"),
                             headers=stranger.headers | YAML)
    assert fits.status_code == 200, fits.text
    one_more = await client.post("/api/v1/monitors", headers=stranger.headers, json={
        "name": "extra", "kind": "tcp", "host": "127.0.0.1", "port": 9, "interval": "5m"})
    assert one_more.status_code == 403 and "allows 50 monitors" in one_more.text


async def test_an_ended_trial_leaves_the_free_plans_limits(
        client: httpx.AsyncClient, stranger: Person, database_url: str) -> None:
    account = (await client.get("/api/v1/account", headers=stranger.headers)).json()
    assert account["organisation"]["limits"] == {"plan": "trial", "monitors": 500,
                                                 "min_interval": "30s"}
    ended = datetime.now(UTC) - timedelta(days=1)
    await set_organisation(database_url, stranger.org_id, trial_ends_at=ended)
    answer = await client.post("/api/v1/monitors", headers=stranger.headers, json={
        "name": "shop", "kind": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1m"})
    assert answer.status_code == 403
    assert (f"the free plan (the trial ended on {ended:%Y-%m-%d}) checks at most every 5m"
            in answer.text)
    account = (await client.get("/api/v1/account", headers=stranger.headers)).json()
    assert account["organisation"]["plan"] == "trial"
    assert account["organisation"]["limits"]["plan"] == "free"
