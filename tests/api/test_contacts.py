"""Contacts over the API: create, read, list, change with versions, delete; who may."""

from __future__ import annotations

import httpx

from tests.api.conftest import Person
from tests.api.recipients import audit_actions, promote

ALA = {"name": "Ala", "timezone": "Europe/Warsaw", "language": "pl"}


async def test_a_contact_is_created_read_and_listed_page_by_page(
        client: httpx.AsyncClient, owner: Person) -> None:
    created = await client.post("/api/v1/contacts", json=ALA, headers=owner.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body | ALA == body and body["is_owner"] is False and body["version"] == 1
    assert created.headers["etag"] == '"1"'
    assert (await client.get(created.headers["location"], headers=owner.headers)).json() == body
    await client.post("/api/v1/contacts", json={"name": "Bob"}, headers=owner.headers)
    first = (await client.get("/api/v1/contacts?limit=2", headers=owner.headers)).json()
    second = (await client.get(f"/api/v1/contacts?limit=2&cursor={first['next_cursor']}",
                               headers=owner.headers)).json()
    # Sign-up made the owner a contact of their organisation first.
    assert [c["name"] for c in first["items"] + second["items"]] == ["Olga Owner", "Ala", "Bob"]
    assert second["next_cursor"] is None


async def test_bad_contacts_name_the_field_and_change_nothing(
        client: httpx.AsyncClient, owner: Person) -> None:
    for body, field in [({"name": "x", "timezone": "Mars/Base"}, "timezone"),
                        ({"name": "x", "language": "tlh"}, "language"),
                        ({"name": ""}, "name"), ({"name": "x", "role": "boss"}, "role")]:
        answer = await client.post("/api/v1/contacts", json=body, headers=owner.headers)
        assert answer.status_code == 422, body
        assert answer.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in answer.json()["errors"]] == [field]
    taken = await client.post("/api/v1/contacts", json={"name": "Olga Owner"},
                              headers=owner.headers)
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "name"
    listed = (await client.get("/api/v1/contacts", headers=owner.headers)).json()["items"]
    assert [c["name"] for c in listed] == ["Olga Owner"]


async def test_two_editors_cannot_overwrite_each_other(client: httpx.AsyncClient,
                                                       owner: Person) -> None:
    created = await client.post("/api/v1/contacts", json=ALA, headers=owner.headers)
    url, etag = created.headers["location"], created.headers["etag"]
    assert (await client.patch(url, json={"is_owner": True},
                               headers=owner.headers)).status_code == 428
    first = await client.patch(url, json={"is_owner": True, "language": None},
                               headers=owner.headers | {"If-Match": etag})
    assert first.status_code == 200, first.text
    assert (first.json()["is_owner"], first.json()["language"]) == (True, "en")  # null: default
    assert first.headers["etag"] == '"2"'
    second = await client.patch(url, json={"timezone": "UTC"},
                                headers=owner.headers | {"If-Match": etag})
    assert second.status_code == 412
    assert (await client.get(url, headers=owner.headers)).json()["timezone"] == "Europe/Warsaw"
    bad = await client.patch(url, json={"timezone": "Mars/Base"},
                             headers=owner.headers | {"If-Match": '"2"'})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "timezone"
    clash = await client.patch(url, json={"name": "Olga Owner"},
                               headers=owner.headers | {"If-Match": '"2"'})
    assert clash.status_code == 409


async def test_viewers_and_read_tokens_read_contacts_but_change_nothing(
        client: httpx.AsyncClient, owner: Person, viewer: Person, database_url: str) -> None:
    url = (await client.post("/api/v1/contacts", json=ALA,
                             headers=owner.headers)).headers["location"]
    assert (await client.get(url, headers=viewer.headers)).json()["name"] == "Ala"
    await promote(database_url, viewer, "member")  # a member, but still with a read token
    for method, body in (("POST", ALA | {"name": "Eve"}), ("PATCH", {"name": "Eve"}),
                         ("DELETE", None)):
        target = "/api/v1/contacts" if method == "POST" else url
        answer = await client.request(method, target, json=body,
                                      headers=viewer.headers | {"If-Match": "*"})
        assert answer.status_code == 403, (method, answer.text)
    assert (await client.get(url, headers=owner.headers)).json()["name"] == "Ala"


async def test_deleting_a_contact_removes_their_points_and_takes_them_out_of_policies(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    ala = (await client.post("/api/v1/contacts", json=ALA, headers=owner.headers)).json()
    bob = (await client.post("/api/v1/contacts", json={"name": "Bob"},
                             headers=owner.headers)).json()
    point = (await client.post(f"/api/v1/contacts/{ala['id']}/points", headers=owner.headers,
                               json={"kind": "email", "address": "ala@example.com"})).json()
    policy = (await client.post("/api/v1/policies", headers=owner.headers, json={
        "name": "web", "contact_ids": [ala["id"], bob["id"]], "all_monitors": True})).json()
    stale = await client.delete(f"/api/v1/contacts/{ala['id']}",
                                headers=owner.headers | {"If-Match": '"7"'})
    assert stale.status_code == 412
    gone = await client.delete(f"/api/v1/contacts/{ala['id']}", headers=owner.headers)
    assert gone.status_code == 204
    assert (await client.get(f"/api/v1/points/{point['id']}",
                             headers=owner.headers)).status_code == 404
    changed = (await client.get(f"/api/v1/policies/{policy['id']}",
                                headers=owner.headers)).json()
    assert (changed["contact_ids"], changed["version"]) == ([bob["id"]], 2)
    alone = await client.delete(f"/api/v1/contacts/{bob['id']}", headers=owner.headers)
    assert alone.status_code == 409 and "web" in alone.json()["detail"]
    assert (await client.get(f"/api/v1/contacts/{bob['id']}",
                             headers=owner.headers)).status_code == 200
    assert await audit_actions(database_url, owner.org_id) >= {"contact_created",
                                                               "contact_deleted"}
