"""Sub-accounts: a member limited to the monitors carrying some tags sees and changes
those monitors and their incidents, and nothing else of the organisation."""

from __future__ import annotations

import httpx
import pytest

from tests.api import seed
from tests.api.conftest import Person, sub_account

WEB = {"name": "web shop", "kind": "tcp", "host": "127.0.0.1", "port": 9, "tags": ["web"]}
DB = {"name": "database", "kind": "tcp", "host": "127.0.0.1", "port": 9, "tags": ["db"]}


async def create(client: httpx.AsyncClient, person: Person, body: dict[str, object]) -> int:
    answer = await client.post("/api/v1/monitors", headers=person.headers, json=body)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


@pytest.fixture
async def monitors(client: httpx.AsyncClient, owner: Person) -> dict[str, int]:
    return {"web": await create(client, owner, WEB), "db": await create(client, owner, DB),
            "untagged": await create(client, owner, WEB | {"name": "plain", "tags": []})}


async def test_a_sub_account_sees_and_changes_only_its_monitors(
        client: httpx.AsyncClient, owner: Person, monitors: dict[str, int]) -> None:
    sub = await sub_account(client, owner, "client@example.com", ["web"])
    listed = (await client.get("/api/v1/monitors", headers=sub.headers)).json()["items"]
    assert [m["name"] for m in listed] == ["web shop"]
    for other in (monitors["db"], monitors["untagged"]):
        url = f"/api/v1/monitors/{other}"
        for method, suffix in (("GET", ""), ("GET", "/results"), ("GET", "/uptime"),
                               ("PATCH", ""), ("DELETE", ""), ("POST", "/pause")):
            answer = await client.request(method, url + suffix, json={"interval": "5m"},
                                          headers=sub.headers | {"If-Match": "*"})
            assert answer.status_code == 404, (method, suffix, answer.text)
    changed = await client.patch(f"/api/v1/monitors/{monitors['web']}", json={"interval": "2m"},
                                 headers=sub.headers | {"If-Match": "*"})
    assert changed.status_code == 200 and changed.json()["interval"] == "2m"


async def test_a_sub_accounts_monitors_keep_one_of_its_tags(
        client: httpx.AsyncClient, owner: Person, monitors: dict[str, int]) -> None:
    sub = await sub_account(client, owner, "client@example.com", ["web", "api"])
    outside = await client.post("/api/v1/monitors", headers=sub.headers,
                                json=WEB | {"name": "new", "tags": ["db"]})
    assert outside.status_code == 422 and outside.json()["errors"][0]["field"] == "tags"
    assert "api, web" in outside.text
    assert await create(client, sub, WEB | {"name": "new", "tags": ["api", "extra"]})
    moved = await client.patch(f"/api/v1/monitors/{monitors['web']}", json={"tags": ["db"]},
                               headers=sub.headers | {"If-Match": "*"})
    assert moved.status_code == 422
    names = {m["name"] for m in (await client.get("/api/v1/monitors",
                                                  headers=owner.headers)).json()["items"]}
    assert names == {"web shop", "database", "plain", "new"}


async def test_a_sub_account_sees_only_its_monitors_incidents(
        client: httpx.AsyncClient, owner: Person, monitors: dict[str, int],
        database_url: str) -> None:
    async with seed.database(database_url) as db:
        web = await seed.incident(db, owner.org_id, monitors["web"], cause="web down")
        other = await seed.incident(db, owner.org_id, monitors["db"], cause="db down")
    sub = await sub_account(client, owner, "client@example.com", ["web"])
    listed = (await client.get("/api/v1/incidents", headers=sub.headers)).json()["items"]
    assert [i["id"] for i in listed] == [web]
    assert (await client.get(f"/api/v1/incidents/{other}", headers=sub.headers)
            ).status_code == 404
    assert (await client.post(f"/api/v1/incidents/{other}/acknowledge", headers=sub.headers)
            ).status_code == 404
    assert (await client.post(f"/api/v1/incidents/{web}/acknowledge", headers=sub.headers)
            ).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/contacts", "/api/v1/policies", "/api/v1/members",
                                  "/api/v1/maintenance", "/api/v1/status-pages",
                                  "/api/v1/messages", "/api/v1/audit"])
async def test_nothing_organisation_wide_reaches_a_sub_account(
        client: httpx.AsyncClient, owner: Person, path: str) -> None:
    sub = await sub_account(client, owner, "client@example.com", ["web"])
    answer = await client.get(path, headers=sub.headers)
    assert answer.status_code == 403 and "sub-account" in answer.text
    bulk = await client.post("/api/v1/monitors/apply", content="monitors: []\n",
                             headers=sub.headers | {"Content-Type": "application/yaml"})
    assert bulk.status_code == 403


async def test_a_viewer_sub_account_reads_but_does_not_change(
        client: httpx.AsyncClient, owner: Person, monitors: dict[str, int]) -> None:
    sub = await sub_account(client, owner, "reader@example.com", ["web"], role="viewer")
    url = f"/api/v1/monitors/{monitors['web']}"
    assert (await client.get(url, headers=sub.headers)).status_code == 200
    assert (await client.patch(url, json={"interval": "2m"},
                               headers=sub.headers | {"If-Match": "*"})).status_code == 403


async def test_owners_limit_and_free_sub_accounts(
        client: httpx.AsyncClient, owner: Person, monitors: dict[str, int]) -> None:
    refused = await client.post("/api/v1/members", headers=owner.headers, json={
        "email": "boss@example.com", "role": "admin", "monitor_tags": ["web"]})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "monitor_tags"
    sub = await sub_account(client, owner, "client@example.com", ["web"])
    members = (await client.get("/api/v1/members", headers=owner.headers)).json()["items"]
    [entry] = [m for m in members if m["email"] == sub.email]
    assert entry["monitor_tags"] == ["web"]
    freed = await client.patch(f"/api/v1/members/{entry['user_id']}", headers=owner.headers,
                               json={"monitor_tags": None})
    assert freed.status_code == 200 and freed.json()["monitor_tags"] is None
    listed = (await client.get("/api/v1/monitors", headers=sub.headers)).json()["items"]
    assert len(listed) == 3
    promoted = await client.patch(f"/api/v1/members/{entry['user_id']}", headers=owner.headers,
                                  json={"monitor_tags": ["db"], "role": "admin"})
    assert promoted.status_code == 422
