"""Tenant isolation: every API route, walked as a stranger (another organisation) and as a
viewer, against the owner's objects. Nothing leaks, nothing changes: a stranger gets
401/403/404 (or, on a list, none of the owner's data), a viewer may read but not change,
and no route answers 500. A route added later is walked too: the test reads the route
table, and fails for a route it does not know how to call."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select

from dozor.store import account_tables as a
from dozor.store import notify_tables as n
from dozor.store import tables as t
from dozor.store.db import create_engine
from dozor.store.incident_tables import incident_acknowledgements, incident_comments
from tests.api import seed
from tests.api.conftest import Person

PUBLIC = {("POST", "/api/v1/signup"), ("POST", "/api/v1/sessions")}
WINDOW = {"name": "intruder", "cron": "0 3 * * *", "duration": "1h", "all-monitors": True}
# A valid body for each route that takes one, so that authorisation, not validation, is
# what refuses the call.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/monitors"): {"name": "intruder", "kind": "tcp", "host": "127.0.0.1",
                                   "port": 9},
    ("PUT", "/api/v1/monitors/{monitor_id}"): {"name": "shop", "kind": "tcp",
                                               "host": "127.0.0.1", "port": 1},
    ("PATCH", "/api/v1/monitors/{monitor_id}"): {"interval": "5m"},
    ("POST", "/api/v1/monitors/apply"): "monitors:\n  - name: x\n    kind: tcp\n"
                                        "    host: 127.0.0.1\n    port: 9\n",
    ("POST", "/api/v1/tokens"): {"name": "stolen"},
    ("POST", "/api/v1/maintenance"): WINDOW,
    ("PUT", "/api/v1/maintenance/{window_id}"): WINDOW,
    ("PATCH", "/api/v1/maintenance/{window_id}"): {"duration": "2h"},
    ("POST", "/api/v1/incidents/{incident_id}/comments"): {"body": "intruder"},
    ("POST", "/api/v1/account/two-factor/confirm"): {"code": "123456"},
}
# Routes that act on the caller's own account: allowed for anyone signed in, and they
# touch only the caller's own rows (checked by the snapshot).
OWN = {("GET", "/api/v1/account"), ("GET", "/api/v1/tokens"), ("POST", "/api/v1/tokens"),
       ("DELETE", "/api/v1/sessions/current"), ("POST", "/api/v1/account/two-factor"),
       ("POST", "/api/v1/account/two-factor/confirm"), ("GET", "/api/v1/monitors"),
       ("POST", "/api/v1/monitors"), ("POST", "/api/v1/monitors/apply"),
       ("GET", "/api/v1/incidents"), ("GET", "/api/v1/maintenance"),
       ("POST", "/api/v1/maintenance"), ("GET", "/api/v1/messages"), ("GET", "/api/v1/audit")}


async def api_routes(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """Every operation under /api/v1, from the OpenAPI document the app serves."""
    spec = (await client.get("/api/openapi.json")).json()
    return sorted((method.upper(), path) for path, operations in spec["paths"].items()
                  if path.startswith("/api/v1") for method in operations)


async def snapshot(database_url: str, org_id: int) -> list[Any]:
    engine = create_engine(database_url)
    m, w, c = t.monitors.c, t.maintenance_windows.c, incident_comments.c
    async with engine.connect() as connection:
        rows = [(await connection.execute(query)).all() for query in (
            select(m.id, m.name, m.revision, m.paused, m.config)
            .where(m.org_id == org_id).order_by(m.id),
            select(a.api_tokens.c.id, a.api_tokens.c.revoked_at)
            .where(a.api_tokens.c.org_id == org_id),
            select(w.id, w.name, w.revision).where(w.org_id == org_id).order_by(w.id),
            select(t.incidents.c.id, t.incidents.c.closed_at)
            .where(t.incidents.c.org_id == org_id).order_by(t.incidents.c.id),
            select(incident_acknowledgements).where(
                incident_acknowledgements.c.org_id == org_id),
            select(c.id, c.body).where(c.org_id == org_id).order_by(c.id),
            select(n.messages.c.id, n.messages.c.status)
            .where(n.messages.c.org_id == org_id).order_by(n.messages.c.id))]
    await engine.dispose()
    return [list(r) for r in rows]


async def owners_incident(client: httpx.AsyncClient, owner: Person, database_url: str,
                          monitor_id: int) -> dict[str, int]:
    """An incident of the owner's monitor, with an alert waiting, a comment, and a
    maintenance window: all of them say "shop", so a leak shows."""
    async with seed.database(database_url) as db:
        incident_id = await seed.incident(db, owner.org_id, monitor_id, cause="shop down")
        message_id = await seed.message(db, owner.org_id, contact_id=None, point_id=None,
                                        incident_id=incident_id)
    await client.post(f"/api/v1/incidents/{incident_id}/comments", headers=owner.headers,
                      json={"body": "shop: restarting"})
    window = await client.post("/api/v1/maintenance", headers=owner.headers, json={
        "name": "shop nightly", "cron": "0 3 * * *", "duration": "1h", "monitors": ["shop"]})
    assert window.status_code == 201, window.text
    return {"incident_id": incident_id, "message_id": message_id,
            "window_id": window.json()["id"]}


async def call(client: httpx.AsyncClient, method: str, path: str, ids: dict[str, int],
               person: Person) -> httpx.Response:
    url = re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)
    body = BODIES.get((method, path))
    headers = person.headers | {"If-Match": "*"}
    if isinstance(body, str):
        return await client.request(method, url, content=body,
                                    headers=headers | {"Content-Type": "application/yaml"})
    return await client.request(method, url, json=body, headers=headers)


async def test_no_route_leaks_or_changes_another_organisations_data(
        client: httpx.AsyncClient, owner: Person, stranger: Person, viewer: Person,
        database_url: str) -> None:
    monitor = (await client.post("/api/v1/monitors", headers=owner.headers, json={
        "name": "shop", "kind": "tcp", "host": "127.0.0.1", "port": 9})).json()
    tokens = (await client.get("/api/v1/tokens", headers=owner.headers)).json()["items"]
    ids = {"monitor_id": monitor["id"], "token_id": tokens[0]["id"],
           **await owners_incident(client, owner, database_url, monitor["id"])}
    before = await snapshot(database_url, owner.org_id)
    walked = []
    routes = await api_routes(client)
    assert len(routes) > 10
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        unknown = set(re.findall(r"\{(\w+)\}", path)) - set(ids)
        assert not unknown, f"{method} {path}: teach this test its {unknown}"
        for person, role in ((stranger, "stranger"), (viewer, "viewer")):
            answer = await call(client, method, path, ids, person)
            walked.append((method, path, role, answer.status_code))
            assert answer.status_code < 500, (method, path, role, answer.text)
            if (method, path) in OWN:
                if role == "stranger":
                    assert "shop" not in answer.text, (method, path)
                continue
            if role == "stranger" or method != "GET":
                assert answer.status_code in (401, 403, 404), (method, path, role,
                                                               answer.status_code)
    assert await snapshot(database_url, owner.org_id) == before
    assert len({(m, p) for m, p, *_ in walked}) == len(routes) - len(PUBLIC)
