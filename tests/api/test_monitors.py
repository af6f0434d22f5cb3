"""Monitors over the API: create, read, change with versions, pause, results, uptime,
YAML apply, plan limits."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import insert

from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.api.conftest import Person

SHOP = {"name": "shop", "kind": "http", "url": "https://shop.example/health",
        "interval": "1m", "tags": ["web"]}


async def test_a_monitor_is_created_read_and_listed(client: httpx.AsyncClient,
                                                    owner: Person) -> None:
    created = await client.post("/api/v1/monitors", json=SHOP, headers=owner.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"] == SHOP["url"] and body["state"] == "unknown"
    assert created.headers["etag"] == f'"{body["version"]}"'
    read = await client.get(created.headers["location"], headers=owner.headers)
    assert read.json() == body
    listed = (await client.get("/api/v1/monitors?tag=web", headers=owner.headers)).json()
    assert [m["name"] for m in listed["items"]] == ["shop"] and listed["next_cursor"] is None


async def test_bad_monitors_name_the_field_and_change_nothing(client: httpx.AsyncClient,
                                                              owner: Person) -> None:
    answer = await client.post("/api/v1/monitors", headers=owner.headers, json={
        "name": "x", "kind": "http", "url": "not a url", "interval": "soon"})
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"url", "interval"}
    assert (await client.get("/api/v1/monitors", headers=owner.headers)).json()["items"] == []


async def test_two_editors_cannot_overwrite_each_other(client: httpx.AsyncClient,
                                                       owner: Person) -> None:
    created = (await client.post("/api/v1/monitors", json=SHOP, headers=owner.headers))
    url, etag = created.headers["location"], created.headers["etag"]
    missing = await client.patch(url, json={"interval": "2m"}, headers=owner.headers)
    assert missing.status_code == 428
    first = await client.patch(url, json={"interval": "2m"},
                               headers=owner.headers | {"If-Match": etag})
    assert first.status_code == 200 and first.json()["interval"] == "2m"
    second = await client.patch(url, json={"interval": "5m"},
                                headers=owner.headers | {"If-Match": etag})
    assert second.status_code == 412
    assert (await client.get(url, headers=owner.headers)).json()["interval"] == "2m"


async def test_pause_resume_and_delete(client: httpx.AsyncClient, owner: Person) -> None:
    url = (await client.post("/api/v1/monitors", json=SHOP,
                             headers=owner.headers)).headers["location"]
    assert (await client.post(f"{url}/pause", headers=owner.headers)).json()["paused"]
    assert not (await client.post(f"{url}/resume", headers=owner.headers)).json()["paused"]
    assert (await client.delete(url, headers=owner.headers)).status_code == 204
    assert (await client.get(url, headers=owner.headers)).status_code == 404


async def test_results_page_backwards_and_uptime_comes_from_them(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    created = (await client.post("/api/v1/monitors", json=SHOP, headers=owner.headers)).json()
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(insert(t.results), [
            {"monitor_id": created["id"], "at": now_ms - i * 1000, "location_id": 1,
             "status": 1 if i % 4 else 0, "latency_ms": 100 + i, "error": None if i % 4 else 6}
            for i in range(10)])
    await engine.dispose()
    url = f"/api/v1/monitors/{created['id']}/results?limit=4"
    first = (await client.get(url, headers=owner.headers)).json()
    second = (await client.get(f"{url}&cursor={first['next_cursor']}",
                               headers=owner.headers)).json()
    assert len(first["items"]) == len(second["items"]) == 4
    assert first["items"][0]["status"] == "down" and first["items"][0]["error"] == "http_status"
    assert first["items"][-1]["at"] > second["items"][0]["at"]
    uptime = (await client.get(f"/api/v1/monitors/{created['id']}/uptime",
                               headers=owner.headers)).json()
    assert uptime["24h"]["checks"] == 10 and uptime["24h"]["uptime"] == 0.7
    assert uptime["24h"]["latency_ms"]["min"] == 100


async def test_yaml_apply_plans_then_applies(client: httpx.AsyncClient, owner: Person) -> None:
    document = "monitors:\n  - name: api\n    kind: tcp\n    host: 127.0.0.1\n    port: 9\n"
    headers = owner.headers | {"Content-Type": "application/yaml"}
    plan = await client.post("/api/v1/monitors/apply?dry_run=true", content=document,
                             headers=headers)
    assert plan.json()["changes"] == ["+ create monitor api"]
    assert (await client.get("/api/v1/monitors", headers=owner.headers)).json()["items"] == []
    await client.post("/api/v1/monitors/apply", content=document, headers=headers)
    again = await client.post("/api/v1/monitors/apply", content=document, headers=headers)
    assert again.json() == {"dry_run": False, "changes": [], "unchanged": 1}
    broken = await client.post("/api/v1/monitors/apply", headers=headers,
                               content="monitors:\n  - name: x\n    kind: tcp\n")
    assert broken.status_code == 422 and "host" in broken.text


async def test_plan_limits_are_enforced_with_clear_errors(client: httpx.AsyncClient,
                                                          stranger: Person) -> None:
    fast = await client.post("/api/v1/monitors", json=SHOP | {"interval": "10s"},
                             headers=stranger.headers)
    assert fast.status_code == 403 and "trial plan checks at most every 30s" in fast.text
