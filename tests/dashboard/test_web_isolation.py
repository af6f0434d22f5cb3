"""Tenant isolation in the dashboard: every page route, walked as a stranger (another
organisation, logged in) and as a viewer, against the owner's objects. Nothing of the
owner's shows to the stranger, a viewer's and a stranger's forms change nothing, and no
page answers 500. A route added later is walked too: the test reads the route table and
fails for a route it does not know how to call."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import update

from dozor.api.security import SESSION_COOKIE, digest
from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.api.conftest import Person, log_in
from tests.api.test_isolation import owners_incident, snapshot

# Before log-in, or about the caller's own session and settings.
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/signup"), ("POST", "/signup"),
          ("POST", "/logout"), ("POST", "/language"),
          # Published status pages and their subscriptions are for anyone:
          # tests/web/test_status_page.py covers what they show.
          ("GET", "/status/{slug}"), ("POST", "/status/{slug}"),
          ("GET", "/status/confirm/{token}"), ("POST", "/status/confirm/{token}"),
          ("GET", "/status/unsubscribe/{token}"), ("POST", "/status/unsubscribe/{token}")}
STREAMS = {("GET", "/events")}  # never ends: tests/dashboard/test_live.py covers it
# Pages that show the caller's own organisation: walked, they must show nothing of the
# owner's; their forms act on the caller's own organisation.
OWN = {("GET", "/"), ("GET", "/new"), ("POST", "/new"), ("GET", "/incidents"),
       ("GET", "/maintenance"), ("POST", "/maintenance"), ("GET", "/messages"),
       ("GET", "/team"), ("POST", "/team/members"),
       # The caller's own account: password, tokens (another's token is not theirs: 404),
       # two-factor log-in.
       ("GET", "/account"), ("POST", "/account/password"), ("POST", "/account/tokens"),
       ("POST", "/account/tokens/{token_id}/revoke"), ("POST", "/account/two-factor"),
       ("POST", "/account/two-factor/confirm"), ("POST", "/account/two-factor/off"),
       ("GET", "/contacts"), ("POST", "/contacts"), ("GET", "/policies"),
       ("POST", "/policies"),
       # The caller's own organisation's data: its export, restriction and erasure.
       ("GET", "/privacy"), ("POST", "/privacy/restriction"), ("POST", "/privacy/erasure")}
# A valid form for each route that takes one, so that authorisation refuses the call.
FORMS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/new"): {"name": "intruder", "kind": "tcp", "target": "127.0.0.1:9"},
    ("POST", "/monitors/{monitor_id}/edit"): {
        "version": "1", "config": "name: mine\nkind: tcp\nhost: 127.0.0.1\nport: 1\n"},
    ("POST", "/monitors/{monitor_id}/{action}"): {},
    ("POST", "/incidents/{incident_id}/comments"): {"body": "intruder"},
    ("POST", "/maintenance"): {"name": "w", "schedule": "cron", "cron": "0 3 * * *",
                               "duration": "1h", "all_monitors": "1"},
    ("POST", "/team/members"): {"email": "new@example.com", "role": "member"},
    ("POST", "/team/members/{user_id}/role"): {"role": "viewer"},
    # The caller's own: forms that fail their checks, so the walk changes no password
    # and makes no token in the owner's organisation (a viewer's would be there).
    ("POST", "/account/password"): {"current_password": "wrong", "new_password": "x" * 12},
    ("POST", "/account/tokens"): {"name": ""},
    ("POST", "/account/two-factor/confirm"): {"code": "000000"},
    ("POST", "/account/two-factor/off"): {"code": "000000"},
    ("POST", "/contacts"): {"name": "intruder"},
    ("POST", "/contacts/{contact_id}/edit"): {"name": "intruder", "version": "1"},
    ("POST", "/contacts/{contact_id}/points"): {"kind": "email", "address": "i@example.com"},
    ("POST", "/points/{point_id}/confirm"): {"code": "123456"},
    ("POST", "/points/{point_id}/edit"): {"version": "1", "events": "down"},
    ("POST", "/policies"): {"name": "intruder", "all_monitors": "1"},
    ("POST", "/policies/{policy_id}"): {"name": "intruder", "all_monitors": "1",
                                        "version": "1"},
    ("POST", "/maintenance/{window_id}"): {"name": "w", "schedule": "cron",
                                           "cron": "0 3 * * *", "duration": "1h",
                                           "all_monitors": "1", "version": "1"},
}
VALUES = {"action": "pause"}


def page_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every route of the dashboard's modules, also inside included routers."""
    def flat(routes: list[Any]) -> list[APIRoute]:
        found: list[APIRoute] = []
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            elif hasattr(route, "original_router"):  # an included router (FastAPI 0.12x+)
                if route.original_router.prefix.startswith(("/api", "/probe")):
                    continue  # the APIs: tests/api/test_isolation.py and tests/probe walk them
                assert not route.original_router.prefix, "a prefixed router: walk its prefix"
                found += flat(route.original_router.routes)
        return found
    return sorted({(method, route.path) for route in flat(app.routes)
                   if route.endpoint.__module__.startswith("dozor.web")
                   for method in route.methods})


async def owners_recipients(client: httpx.AsyncClient, owner: Person) -> dict[str, int]:
    """A contact with a point and a policy, named so that a leak shows ("shop")."""
    contact = await client.post("/api/v1/contacts", headers=owner.headers,
                                json={"name": "shop on call"})
    point = await client.post(f"/api/v1/contacts/{contact.json()['id']}/points",
                              headers=owner.headers,
                              json={"kind": "email", "address": "shop@example.com"})
    policy = await client.post("/api/v1/policies", headers=owner.headers, json={
        "name": "shop", "contact_ids": [contact.json()["id"]], "tags": ["shop"]})
    assert policy.status_code == 201, policy.text
    return {"contact_id": contact.json()["id"], "point_id": point.json()["id"],
            "policy_id": policy.json()["id"]}


async def session(client: httpx.AsyncClient, person: Person) -> dict[str, str]:
    token = await log_in(client, person.email)
    return {"Cookie": f"{SESSION_COOKIE}={token}",
            "X-Form-Token": digest("form:" + token)[:32]}


async def call(client: httpx.AsyncClient, method: str, path: str, ids: dict[str, Any],
               who: dict[str, str]) -> httpx.Response:
    url = re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)
    cookie = {"Cookie": who["Cookie"]}
    if method == "GET":
        return await client.get(url, headers=cookie)
    form = FORMS.get((method, path), {}) | {"form_token": who["X-Form-Token"]}
    return await client.post(url, data=form, headers=cookie)


async def test_no_page_leaks_or_changes_another_organisations_data(
        app: FastAPI, client: httpx.AsyncClient, owner: Person, stranger: Person,
        viewer: Person, database_url: str) -> None:
    monitor = (await client.post("/api/v1/monitors", headers=owner.headers, json={
        "name": "shop", "kind": "tcp", "host": "127.0.0.1", "port": 9})).json()
    tokens = (await client.get("/api/v1/tokens", headers=owner.headers)).json()["items"]
    [token] = [t for t in tokens if t["user_id"] == 1]  # the owner's own
    ids: dict[str, Any] = {"monitor_id": monitor["id"], **VALUES, "user_id": 1,
                           "token_id": token["id"],
                           **await owners_incident(client, owner, database_url,
                                                   monitor["id"]),
                           **await owners_recipients(client, owner)}
    people = {"stranger": await session(client, stranger),
              "viewer": await session(client, viewer)}
    before = await snapshot(database_url, owner.org_id)
    routes = page_routes(app)
    assert len(routes) > 5
    for method, path in routes:
        if (method, path) in PUBLIC | STREAMS:
            continue
        unknown = set(re.findall(r"\{(\w+)\}", path)) - set(ids)
        assert not unknown, f"{method} {path}: teach this test its {unknown}"
        for role, who in people.items():
            answer = await call(client, method, path, ids, who)
            assert answer.status_code < 500, (method, path, role, answer.text[:500])
            if role == "stranger":
                assert "shop" not in answer.text, (method, path, answer.text[:500])
                if (method, path) not in OWN:
                    assert answer.status_code in (403, 404), (method, path, answer.status_code)
            elif method == "POST" and (method, path) not in OWN:
                assert answer.status_code == 403, (method, path, role, answer.status_code)
    assert await snapshot(database_url, owner.org_id) == before


async def test_a_form_without_its_token_is_refused(client: httpx.AsyncClient,
                                                   owner: Person) -> None:
    who = await session(client, owner)
    answer = await client.post("/new", data={"name": "x", "kind": "tcp",
                                             "target": "127.0.0.1:9"},
                               headers={"Cookie": who["Cookie"]})
    assert answer.status_code == 403
    listed = await client.get("/api/v1/monitors", headers=owner.headers)
    assert listed.json()["items"] == []


async def test_a_refusal_is_a_page_that_says_why(client: httpx.AsyncClient, owner: Person,
                                                 viewer: Person) -> None:
    monitor = (await client.post("/api/v1/monitors", headers=owner.headers, json={
        "name": "shop", "kind": "tcp", "host": "127.0.0.1", "port": 9})).json()
    who = await session(client, viewer)
    answer = await client.post(f"/monitors/{monitor['id']}/pause",
                               data={"form_token": who["X-Form-Token"]},
                               headers={"Cookie": who["Cookie"]})
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert "this needs the member role" in answer.text


async def test_the_monitor_page_shows_when_the_certificate_runs_out(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    monitor = (await client.post("/api/v1/monitors", headers=owner.headers, json={
        "name": "shop", "kind": "tls", "host": "127.0.0.1", "port": 443})).json()
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(update(t.monitor_state).values(
            expires_at=datetime.now(UTC) + timedelta(days=10, hours=1)))
    await engine.dispose()
    who = await session(client, owner)
    page = await client.get(f"/monitors/{monitor['id']}", headers={"Cookie": who["Cookie"]})
    expiry = re.search(r'<p class="(\w+)" data-expiry>([^<]+)</p>', page.text)
    assert expiry and expiry.group(1) == "why" and "(10 days)" in expiry.group(2)
