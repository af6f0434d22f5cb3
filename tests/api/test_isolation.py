"""Tenant isolation: every API route, walked as a stranger (another organisation) and as a
viewer, against the owner's objects. Nothing leaks, nothing changes: a stranger gets
401/403/404 (or, on a list, none of the owner's data), a viewer may read but not change,
and no route answers 500. A route added later is walked too: the test reads the route
table, and fails for a route it does not know how to call."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.store import account_tables as a
from dozor.store import notify_tables as n
from dozor.store import status_tables as st
from dozor.store import tables as t
from dozor.store.db import create_engine
from dozor.store.incident_tables import incident_acknowledgements, incident_comments
from tests.api import seed
from tests.api.conftest import PASSWORD, Person, sub_account

# Public status pages are tested apart (test_status_public): they show published pages
# to anyone, and nothing of an unpublished one.
PUBLIC = {("POST", "/api/v1/signup"), ("POST", "/api/v1/sessions"),
          ("POST", "/api/v1/password-reset"), ("POST", "/api/v1/password-reset/confirm"),
          ("GET", "/api/v1/public/status-pages/{slug}"),
          ("GET", "/api/v1/public/status-pages")}
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
    ("POST", "/api/v1/account/two-factor/confirm"): {"code": "123456"},
    ("DELETE", "/api/v1/account/two-factor"): {"code": "123456"},
    ("POST", "/api/v1/account/email/confirm"): {"code": "123456"},
    ("POST", "/api/v1/account/password"): {"current_password": PASSWORD,
                                           "new_password": "a new passphrase"},
    ("POST", "/api/v1/members"): {"email": "newcomer@example.com", "role": "viewer"},
    ("PATCH", "/api/v1/members/{user_id}"): {"role": "viewer"},
    ("POST", "/api/v1/contacts"): {"name": "intruder"},
    ("PATCH", "/api/v1/contacts/{contact_id}"): {"name": "renamed"},
    ("POST", "/api/v1/contacts/{contact_id}/points"): {"kind": "email",
                                                       "address": "intruder@example.com"},
    ("PATCH", "/api/v1/points/{point_id}"): {"priority": 9},
    ("POST", "/api/v1/account/restriction"): {"restricted": True},
    ("POST", "/api/v1/account/erasure"): {"confirm": "not-the-slug"},
    ("POST", "/api/v1/account/plan"): {"plan": "free"},
    ("POST", "/api/v1/points/{point_id}/confirm"): {"code": "123456"},
    ("POST", "/api/v1/policies"): {"name": "intruder", "contact_ids": [1],
                                   "all_monitors": True},
    ("PATCH", "/api/v1/policies/{policy_id}"): {"all_monitors": False},
    ("POST", "/api/v1/maintenance"): WINDOW,
    ("PUT", "/api/v1/maintenance/{window_id}"): WINDOW,
    ("PATCH", "/api/v1/maintenance/{window_id}"): {"duration": "2h"},
    ("POST", "/api/v1/incidents/{incident_id}/comments"): {"body": "intruder"},
    ("POST", "/api/v1/status-pages"): {"slug": "intruder-page", "title": "Intruder"},
    ("PUT", "/api/v1/status-pages/{page_id}"): {"slug": "taken-over", "title": "Mine",
                                                "published": True},
    ("PATCH", "/api/v1/status-pages/{page_id}"): {"published": False, "groups": []},
    ("POST", "/api/v1/status-pages/{page_id}/notes"): {"status": "resolved",
                                                       "text": "nothing happened"},
    ("PATCH", "/api/v1/status-pages/{page_id}/notes/{note_id}"): {"text": "defaced"},
}
# Routes that act on the caller's own account: allowed for anyone signed in, and they
# touch only the caller's own rows (checked by the snapshot).
OWN = {("GET", "/api/v1/account"), ("GET", "/api/v1/tokens"), ("POST", "/api/v1/tokens"),
       ("DELETE", "/api/v1/sessions/current"), ("POST", "/api/v1/account/two-factor"),
       ("POST", "/api/v1/account/two-factor/confirm"), ("GET", "/api/v1/monitors"),
       ("POST", "/api/v1/monitors"), ("POST", "/api/v1/monitors/apply"),
       ("DELETE", "/api/v1/account/two-factor"), ("POST", "/api/v1/account/password"),
       ("POST", "/api/v1/account/email/confirmation"),
       ("POST", "/api/v1/account/email/confirm"), ("GET", "/api/v1/members"),
       ("POST", "/api/v1/members"),
       ("GET", "/api/v1/contacts"), ("POST", "/api/v1/contacts"), ("GET", "/api/v1/policies"),
       ("POST", "/api/v1/policies"),
       ("GET", "/api/v1/incidents"), ("GET", "/api/v1/maintenance"),
       ("POST", "/api/v1/maintenance"), ("GET", "/api/v1/messages"), ("GET", "/api/v1/audit"),
       ("GET", "/api/v1/status-pages"), ("POST", "/api/v1/status-pages"),
       ("GET", "/api/v1/account/export"), ("GET", "/api/v1/account/privacy"),
       ("POST", "/api/v1/account/restriction"), ("POST", "/api/v1/account/erasure"),
       ("POST", "/api/v1/account/plan"),
       ("GET", "/api/v1/account/retention")}
# Of the OWN routes, those a sub-account walks too: they reach the organisation's monitors.
SUB_ACCOUNT_WALKS = {("GET", "/api/v1/monitors"), ("POST", "/api/v1/monitors"),
                     ("POST", "/api/v1/monitors/apply"), ("GET", "/api/v1/incidents")}
# The viewer holds a read token, which changes nothing, even among OWN routes; logging
# out is the exception (it ends a session, and a read token is none).
READ_TOKEN_MAY = {("DELETE", "/api/v1/sessions/current")}


async def api_routes(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """Every operation under /api/v1, from the OpenAPI document the app serves."""
    spec = (await client.get("/api/openapi.json")).json()
    return sorted((method.upper(), path) for path, operations in spec["paths"].items()
                  if path.startswith("/api/v1") for method in operations)


async def snapshot(database_url: str, org_id: int) -> list[Any]:
    engine = create_engine(database_url)
    m, u = a.memberships.c, a.users.c
    async with engine.connect() as connection:
        monitors = (await connection.execute(
            select(t.monitors.c.id, t.monitors.c.name, t.monitors.c.revision,
                   t.monitors.c.paused, t.monitors.c.config)
            .where(t.monitors.c.org_id == org_id).order_by(t.monitors.c.id))).all()
        tokens = (await connection.execute(
            select(a.api_tokens.c.id, a.api_tokens.c.revoked_at)
            .where(a.api_tokens.c.org_id == org_id))).all()
        members = (await connection.execute(
            select(m.user_id, m.role, u.password_hash, u.totp_enabled_at, u.email_confirmed_at)
            .join(a.users, u.id == m.user_id).where(m.org_id == org_id)
            .order_by(m.user_id))).all()
        sessions = (await connection.execute(
            select(a.sessions.c.token_hash).where(a.sessions.c.org_id == org_id)
            .order_by(a.sessions.c.token_hash))).all()
        recipients = [(await connection.execute(
            select(table).where(table.c.org_id == org_id).order_by(table.c.id))).all()
            for table in (n.contacts, n.contact_points, n.alert_policies, n.verifications,
                          n.consents, n.messages)]
        w, c = t.maintenance_windows.c, incident_comments.c
        incidents = [(await connection.execute(query)).all() for query in (
            select(w.id, w.name, w.revision).where(w.org_id == org_id).order_by(w.id),
            select(t.incidents.c.id, t.incidents.c.closed_at)
            .where(t.incidents.c.org_id == org_id).order_by(t.incidents.c.id),
            select(incident_acknowledgements).where(
                incident_acknowledgements.c.org_id == org_id),
            select(c.id, c.body).where(c.org_id == org_id).order_by(c.id))]
        pages = await status_page_snapshot(connection, org_id)
    await engine.dispose()
    return [list(monitors), list(tokens), list(members), list(sessions),
            *map(list, recipients), *map(list, incidents), *pages]


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


async def status_page_snapshot(connection: AsyncConnection, org_id: int) -> list[Any]:
    p, m, n = st.status_pages.c, st.status_page_monitors.c, st.status_notes.c
    own = select(p.id).where(p.org_id == org_id).scalar_subquery()
    pages = (await connection.execute(
        select(p.id, p.slug, p.title, p.published, p.version)
        .where(p.org_id == org_id).order_by(p.id))).all()
    shown = (await connection.execute(
        select(m.page_id, m.monitor_id, m.display_name).where(m.page_id.in_(own))
        .order_by(m.page_id, m.monitor_id))).all()
    notes = (await connection.execute(
        select(n.id, n.body, n.version).where(n.page_id.in_(own)).order_by(n.id))).all()
    return [list(pages), list(shown), list(notes)]


def readable(answer: httpx.Response) -> str:
    """The answer's text; an archive's unpacked, so a leak inside it shows too."""
    if answer.headers.get("content-type") != "application/zip":
        return answer.text
    bundle = zipfile.ZipFile(io.BytesIO(answer.content))
    return "".join(bundle.read(name).decode() for name in bundle.namelist())


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
    # Named after the monitor, so a list that leaks them shows "shop" to a stranger.
    contact = (await client.post("/api/v1/contacts", headers=owner.headers,
                                 json={"name": "shop on-call"})).json()
    point = (await client.post(f"/api/v1/contacts/{contact['id']}/points",
                               headers=owner.headers,
                               json={"kind": "sms", "address": "+48600100200"})).json()
    policy = (await client.post("/api/v1/policies", headers=owner.headers, json={
        "name": "shop alerts", "contact_ids": [contact["id"]], "all_monitors": True})).json()
    me = (await client.get("/api/v1/account", headers=owner.headers)).json()
    page = (await client.post("/api/v1/status-pages", headers=owner.headers, json={
        "slug": "shop-status", "title": "shop", "published": True,
        "groups": [{"name": "shop", "monitors": [{"monitor_id": monitor["id"]}]}]})).json()
    note = (await client.post(f"/api/v1/status-pages/{page['id']}/notes",
                              headers=owner.headers,
                              json={"status": "info", "text": "shop news"})).json()
    ids = {"monitor_id": monitor["id"], "token_id": tokens[0]["id"], "user_id": me["user"]["id"],
           "contact_id": contact["id"], "point_id": point["id"], "policy_id": policy["id"],
           "page_id": page["id"], "note_id": note["id"],
           **await owners_incident(client, owner, database_url, monitor["id"])}
    # A member of the owner's organisation who sees only monitors tagged "elsewhere": to
    # it, the owner's untagged "shop" is as foreign as to a stranger.
    outsider = await sub_account(client, owner, "outsider@example.com", ["elsewhere"])
    before = await snapshot(database_url, owner.org_id)
    walked = []
    routes = await api_routes(client)
    assert len(routes) > 10
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        unknown = set(re.findall(r"\{(\w+)\}", path)) - set(ids)
        assert not unknown, f"{method} {path}: teach this test its {unknown}"
        for person, role in ((stranger, "stranger"), (viewer, "viewer"),
                             (outsider, "sub-account")):
            if role == "sub-account" and (method, path) in OWN - SUB_ACCOUNT_WALKS:
                continue  # about the caller's own account, and walked by the others
            answer = await call(client, method, path, ids, person)
            walked.append((method, path, role, answer.status_code))
            assert answer.status_code < 500, (method, path, role, answer.text)
            if (method, path) in OWN:
                if role in ("stranger", "sub-account"):
                    assert "shop" not in readable(answer), (method, path)
                    assert owner.email not in readable(answer), (method, path)
                elif method != "GET" and (method, path) not in READ_TOKEN_MAY:
                    assert answer.status_code == 403, (method, path, role, answer.text)
                continue
            if role in ("stranger", "sub-account") or method != "GET":
                assert answer.status_code in (401, 403, 404), (method, path, role,
                                                               answer.status_code)
    assert await snapshot(database_url, owner.org_id) == before
    assert len({(m, p) for m, p, *_ in walked}) == len(routes) - len(PUBLIC)
