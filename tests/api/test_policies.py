"""Alert policies over the API: CRUD with versions, validation, and the router obeying
what was written."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import select, update

from dozor.notify.router import Router
from dozor.store import notify_tables as n
from dozor.store.db import create_engine
from tests.api.conftest import Person
from tests.notify.conftest import open_incident


async def contact(client: httpx.AsyncClient, person: Person, name: str) -> int:
    answer = await client.post("/api/v1/contacts", json={"name": name}, headers=person.headers)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


async def test_a_policy_is_created_changed_under_its_version_and_deleted(
        client: httpx.AsyncClient, owner: Person, viewer: Person) -> None:
    ala = await contact(client, owner, "Ala")
    created = await client.post("/api/v1/policies", headers=owner.headers, json={
        "name": "web", "contact_ids": [ala, ala], "tags": ["web"]})
    assert created.status_code == 201, created.text
    policy = created.json()
    assert (policy["contact_ids"], policy["all_monitors"], policy["monitor_names"],
            policy["version"]) == ([ala], False, [], 1)
    url = created.headers["location"]
    assert (await client.get(url, headers=viewer.headers)).json() == policy
    listed = (await client.get("/api/v1/policies", headers=owner.headers)).json()
    assert listed == {"items": [policy], "next_cursor": None}
    assert (await client.patch(url, json={"monitor_names": ["shop"]},
                               headers=owner.headers)).status_code == 428
    changed = await client.patch(url, json={"monitor_names": ["shop"], "tags": None},
                                 headers=owner.headers | {"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["monitor_names"], changed.json()["tags"]) == (["shop"], [])
    assert (await client.patch(url, json={"tags": ["x"]}, headers=owner.headers | {
        "If-Match": '"1"'})).status_code == 412
    assert (await client.delete(url, headers=viewer.headers)).status_code == 403
    assert (await client.delete(url, headers=owner.headers)).status_code == 204
    assert (await client.get(url, headers=owner.headers)).status_code == 404


async def test_bad_policies_name_the_field_and_change_nothing(
        client: httpx.AsyncClient, owner: Person, stranger: Person) -> None:
    ala = await contact(client, owner, "Ala")
    theirs = await contact(client, stranger, "Stan's friend")
    for body, field in [({"name": "p", "contact_ids": [], "all_monitors": True}, "contact_ids"),
                        ({"name": "p", "contact_ids": [ala]}, "all_monitors"),
                        ({"name": "p", "contact_ids": [ala, theirs], "all_monitors": True},
                         "contact_ids.1"),
                        ({"name": "p", "contact_ids": [ala], "tags": [""]}, "tags.0"),
                        ({"name": "p", "contact_ids": [ala], "all_monitors": "maybe"},
                         "all_monitors")]:
        answer = await client.post("/api/v1/policies", json=body, headers=owner.headers)
        assert answer.status_code == 422, body
        assert [e["field"] for e in answer.json()["errors"]] == [field], answer.json()
    await client.post("/api/v1/policies", headers=owner.headers, json={
        "name": "p", "contact_ids": [ala], "all_monitors": True})
    taken = await client.post("/api/v1/policies", headers=owner.headers, json={
        "name": "p", "contact_ids": [ala], "tags": ["db"]})
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "name"
    assert len((await client.get("/api/v1/policies", headers=owner.headers)).json()[
        "items"]) == 1


async def test_the_router_alerts_only_the_contacts_a_policy_written_here_chooses(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    points = {}
    for name, address in (("Ala", "ala@example.com"), ("Bob", "bob@example.com")):
        contact_id = await contact(client, owner, name)
        answer = await client.post(f"/api/v1/contacts/{contact_id}/points",
                                   headers=owner.headers,
                                   json={"kind": "email", "address": address})
        points[name] = (contact_id, answer.json()["id"])
    created = await client.post("/api/v1/policies", headers=owner.headers, json={
        "name": "web on-call", "contact_ids": [points["Ala"][0]], "tags": ["web"]})
    assert created.status_code == 201
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:  # as if both had confirmed
            await connection.execute(update(n.contact_points).values(
                confirmed_at=datetime.now(UTC)))
        for name, tags in (("shop", ["web"]), ("db", ["internal"])):
            change = await open_incident(engine, name, tags)
            async with engine.begin() as connection:
                await Router()(connection, change)
        async with engine.connect() as connection:
            sent = (await connection.execute(
                select(n.messages.c.point_id, n.messages.c.subject)
                .where(n.messages.c.event == "down"))).all()
    finally:
        await engine.dispose()
    # Only Ala hears about shop; nobody's policy covers db, so nobody hears about it.
    assert [(point, subject.split(" ")[1]) for point, subject in sent] == [
        (points["Ala"][1], "shop")]

