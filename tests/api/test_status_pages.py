"""Status pages and their notes over the API: create, read, change with versions, delete;
validation naming the field; another organisation's monitors and incidents refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import insert, select

from dozor.store import account_tables as a
from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.api.conftest import Person

PAGES = "/api/v1/status-pages"


async def add_monitor(client: httpx.AsyncClient, person: Person, name: str) -> int:
    created = await client.post("/api/v1/monitors", headers=person.headers, json={
        "name": name, "kind": "tcp", "host": "127.0.0.1", "port": 9})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def page_body(*monitor_ids: int, slug: str = "acme", **fields: Any) -> dict[str, Any]:
    return {"slug": slug, "title": "Acme", "groups": [
        {"name": "Web", "monitors": [{"monitor_id": m, "display_name": f"Service {m}"}
                                     for m in monitor_ids]}], **fields}


async def test_a_page_is_created_read_listed_and_deleted(client: httpx.AsyncClient,
                                                         owner: Person) -> None:
    shop, api = (await add_monitor(client, owner, "shop"),
                 await add_monitor(client, owner, "api"))
    body = {"slug": "acme", "title": "Acme status", "description": "Our services",
            "custom_domain": "Status.Acme.Example", "published": True, "groups": [
                {"name": "Web", "monitors": [{"monitor_id": shop, "display_name": "Shop"}]},
                {"name": "Back office", "monitors": [{"monitor_id": api}]},
                {"name": "Later", "monitors": []}]}
    created = await client.post(PAGES, json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    page = created.json()
    assert page["custom_domain"] == "status.acme.example"
    assert page["groups"] == [
        {"name": "Web", "monitors": [{"monitor_id": shop, "display_name": "Shop"}]},
        {"name": "Back office", "monitors": [{"monitor_id": api, "display_name": None}]},
        {"name": "Later", "monitors": []}]
    assert page["version"] == 1 and created.headers["etag"] == '"1"'
    assert page["public_path"] == "/api/v1/public/status-pages/acme"
    read = await client.get(created.headers["location"], headers=owner.headers)
    assert read.json() == page
    listed = (await client.get(PAGES, headers=owner.headers)).json()
    assert listed == {"items": [page], "next_cursor": None}
    gone = await client.delete(created.headers["location"], headers=owner.headers)
    assert gone.status_code == 204
    assert (await client.get(created.headers["location"],
                             headers=owner.headers)).status_code == 404


async def test_pages_are_listed_a_page_at_a_time(client: httpx.AsyncClient,
                                                 owner: Person) -> None:
    for slug in ("one", "two", "three"):
        assert (await client.post(PAGES, json=page_body(slug=slug),
                                  headers=owner.headers)).status_code == 201
    first = (await client.get(f"{PAGES}?limit=2", headers=owner.headers)).json()
    rest = (await client.get(f"{PAGES}?limit=2&cursor={first['next_cursor']}",
                             headers=owner.headers)).json()
    assert [p["slug"] for p in first["items"] + rest["items"]] == ["one", "two", "three"]
    assert rest["next_cursor"] is None


async def test_bad_pages_name_each_field_and_change_nothing(client: httpx.AsyncClient,
                                                            owner: Person) -> None:
    answer = await client.post(PAGES, headers=owner.headers, json={
        "slug": "Not A Slug", "title": "", "custom_domain": "http://x", "published": "yes",
        "groups": [{"name": "Web", "monitors": [{"monitor_id": 0}]}], "colour": "red"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in answer.json()["errors"]} == {
        "slug", "title", "custom_domain", "published", "groups.0.monitors.0.monitor_id",
        "colour"}
    assert (await client.get(PAGES, headers=owner.headers)).json()["items"] == []


async def test_slugs_are_short_lowercase_words_and_some_are_reserved(
        client: httpx.AsyncClient, owner: Person) -> None:
    for slug in ("ab", "a" * 64, "-acme", "acme-", "acme_shop", "ACME", "acme\n", "api",
                 "admin", "www", "static"):
        answer = await client.post(PAGES, json=page_body(slug=slug), headers=owner.headers)
        assert answer.status_code == 422, slug
        assert [e["field"] for e in answer.json()["errors"]] == ["slug"], slug
    for slug in ("abc", "a" * 63, "acme-shop-2"):
        answer = await client.post(PAGES, json=page_body(slug=slug), headers=owner.headers)
        assert answer.status_code == 201, (slug, answer.text)


async def test_a_custom_domain_must_be_a_host_name(client: httpx.AsyncClient,
                                                   owner: Person) -> None:
    for domain in ("localhost", "10.0.0.1", "[::1]", "status example.com", "a..b.com",
                   "https://status.example.com", "x" * 64 + ".example.com"):
        answer = await client.post(PAGES, json=page_body(custom_domain=domain),
                                   headers=owner.headers)
        assert answer.status_code == 422, domain
        assert [e["field"] for e in answer.json()["errors"]] == ["custom_domain"], domain
    ok = await client.post(PAGES, json=page_body(custom_domain="statuś.example.com"),
                           headers=owner.headers)
    assert ok.json()["custom_domain"] == "xn--statu-ycb.example.com"  # the IDN's A-label


async def test_a_missing_monitor_is_named_by_its_field_path(client: httpx.AsyncClient,
                                                            owner: Person) -> None:
    shop = await add_monitor(client, owner, "shop")
    body = {"slug": "acme", "title": "Acme", "groups": [
        {"name": "Web", "monitors": [{"monitor_id": shop}]},
        {"name": "API", "monitors": [{"monitor_id": shop + 1}, {"monitor_id": shop},
                                     {"monitor_id": 9999}]}]}
    answer = await client.post(PAGES, json=body, headers=owner.headers)
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"field": "groups.1.monitors.1.monitor_id",
         "message": f"monitor {shop} is already on this page"},
        {"field": "groups.1.monitors.0.monitor_id",
         "message": f"no monitor {shop + 1} in this organisation"},
        {"field": "groups.1.monitors.2.monitor_id",
         "message": "no monitor 9999 in this organisation"}]


async def test_another_organisations_monitor_is_refused_like_a_missing_one(
        client: httpx.AsyncClient, owner: Person, stranger: Person) -> None:
    theirs = await add_monitor(client, owner, "secret backend")
    mine = await add_monitor(client, stranger, "mine")
    answer = await client.post(PAGES, headers=stranger.headers,
                               json=page_body(mine, theirs, slug="stranger"))
    assert answer.status_code == 422
    assert answer.json()["errors"] == [{"field": "groups.0.monitors.1.monitor_id",
                                        "message": f"no monitor {theirs} in this "
                                                   "organisation"}]
    assert "secret" not in answer.text
    assert (await client.get(PAGES, headers=stranger.headers)).json()["items"] == []


async def test_slugs_and_custom_domains_are_unique_across_the_installation(
        client: httpx.AsyncClient, owner: Person, stranger: Person) -> None:
    assert (await client.post(PAGES, headers=owner.headers, json=page_body(
        custom_domain="status.acme.example"))).status_code == 201
    answer = await client.post(PAGES, headers=stranger.headers, json=page_body(
        slug="acme", custom_domain="STATUS.acme.example"))
    assert answer.status_code == 409
    assert {e["field"] for e in answer.json()["errors"]} == {"slug", "custom_domain"}
    other = await client.post(PAGES, headers=stranger.headers, json=page_body(slug="other"))
    assert other.status_code == 201


async def test_two_editors_cannot_overwrite_each_other(client: httpx.AsyncClient,
                                                       owner: Person) -> None:
    created = await client.post(PAGES, json=page_body(), headers=owner.headers)
    url, tag = created.headers["location"], created.headers["etag"]
    assert (await client.patch(url, json={"title": "New"},
                               headers=owner.headers)).status_code == 428
    first = await client.patch(url, json={"title": "New"},
                               headers=owner.headers | {"If-Match": tag})
    assert first.status_code == 200 and first.json()["version"] == 2
    assert first.headers["etag"] == '"2"'
    second = await client.put(url, json=page_body(title="Other"),
                              headers=owner.headers | {"If-Match": tag})
    assert second.status_code == 412
    stale_delete = await client.delete(url, headers=owner.headers | {"If-Match": tag})
    assert stale_delete.status_code == 412
    assert (await client.get(url, headers=owner.headers)).json()["title"] == "New"


async def test_a_patch_changes_only_what_it_names(client: httpx.AsyncClient,
                                                  owner: Person) -> None:
    shop = await add_monitor(client, owner, "shop")
    created = await client.post(PAGES, headers=owner.headers, json=page_body(
        shop, custom_domain="status.acme.example", description="About us"))
    url = created.headers["location"]
    published = await client.patch(url, json={"published": True, "custom_domain": None},
                                   headers=owner.headers | {"If-Match": '"1"'})
    assert published.status_code == 200, published.text
    page = published.json()
    assert page["published"] and page["custom_domain"] is None
    assert page["description"] == "About us" and page["groups"] == created.json()["groups"]
    bad = await client.patch(url, json={"groups": [{"name": "x", "monitors": [
        {"monitor_id": shop, "display_name": ""}]}], "slug": "www"},
        headers=owner.headers | {"If-Match": '"2"'})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {
        "slug", "groups.0.monitors.0.display_name"}
    assert (await client.get(url, headers=owner.headers)).json() == page


async def test_publishing_is_recorded_in_the_audit_log(client: httpx.AsyncClient,
                                                       owner: Person,
                                                       database_url: str) -> None:
    url = (await client.post(PAGES, json=page_body(), headers=owner.headers)
           ).headers["location"]
    await client.patch(url, json={"published": True}, headers=owner.headers | {"If-Match": "*"})
    await client.patch(url, json={"published": False},
                       headers=owner.headers | {"If-Match": "*"})
    await client.delete(url, headers=owner.headers)
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        actions = (await connection.execute(
            select(a.audit_log.c.action).where(a.audit_log.c.action.like("status_page%"))
            .order_by(a.audit_log.c.id))).scalars().all()
    await engine.dispose()
    assert actions == ["status_page_created", "status_page_published",
                       "status_page_unpublished", "status_page_deleted"]


async def test_a_deleted_monitor_leaves_every_page(client: httpx.AsyncClient,
                                                   owner: Person) -> None:
    shop, api = (await add_monitor(client, owner, "shop"),
                 await add_monitor(client, owner, "api"))
    url = (await client.post(PAGES, json=page_body(shop, api), headers=owner.headers)
           ).headers["location"]
    assert (await client.delete(f"/api/v1/monitors/{shop}",
                                headers=owner.headers)).status_code == 204
    groups = (await client.get(url, headers=owner.headers)).json()["groups"]
    assert groups == [{"name": "Web", "monitors": [{"monitor_id": api,
                                                    "display_name": f"Service {api}"}]}]


async def test_viewers_read_pages_and_notes_but_change_nothing(
        client: httpx.AsyncClient, owner: Person, viewer: Person) -> None:
    url = (await client.post(PAGES, json=page_body(), headers=owner.headers)
           ).headers["location"]
    await client.post(f"{url}/notes", json={"status": "info", "text": "Hello"},
                      headers=owner.headers)
    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    notes = await client.get(f"{url}/notes", headers=viewer.headers)
    assert [n["text"] for n in notes.json()["items"]] == ["Hello"]
    for method, path, body in (("POST", PAGES, page_body(slug="viewer")),
                               ("PATCH", url, {"title": "x"}),
                               ("POST", f"{url}/notes", {"status": "info", "text": "x"})):
        answer = await client.request(method, path, json=body,
                                      headers=viewer.headers | {"If-Match": "*"})
        assert answer.status_code == 403, (method, path)


async def incident(database_url: str, org_id: int, monitor_id: int) -> int:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        incident_id = (await connection.execute(insert(t.incidents).values(
            org_id=org_id, monitor_id=monitor_id, opened_at=datetime.now(UTC),
            cause="connection refused by 10.1.2.3:5432").returning(t.incidents.c.id))
        ).scalar_one()
    await engine.dispose()
    return int(incident_id)


async def test_notes_are_added_changed_with_versions_and_deleted(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    shop = await add_monitor(client, owner, "shop")
    incident_id = await incident(database_url, owner.org_id, shop)
    url = (await client.post(PAGES, json=page_body(shop), headers=owner.headers)
           ).headers["location"]
    added = await client.post(f"{url}/notes", headers=owner.headers, json={
        "status": "investigating", "text": "The shop is slow.", "incident_id": incident_id})
    assert added.status_code == 201, added.text
    note = added.json()
    assert note["status"] == "investigating" and note["incident_id"] == incident_id
    assert note["version"] == 1 and note["author_id"] is not None
    note_url = added.headers["location"]
    assert (await client.get(note_url, headers=owner.headers)).json() == note
    assert (await client.patch(note_url, json={"status": "resolved"},
                               headers=owner.headers)).status_code == 428
    changed = await client.patch(note_url, json={"status": "identified", "incident_id": None},
                                 headers=owner.headers | {"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    assert changed.json()["text"] == "The shop is slow."
    assert changed.json()["incident_id"] is None and changed.json()["updated_at"]
    assert (await client.patch(note_url, json={"text": "x"},
                               headers=owner.headers | {"If-Match": '"1"'})).status_code == 412
    assert (await client.delete(note_url, headers=owner.headers)).status_code == 204
    assert (await client.get(f"{url}/notes", headers=owner.headers)).json()["items"] == []


async def test_notes_are_listed_newest_first_a_page_at_a_time(client: httpx.AsyncClient,
                                                              owner: Person) -> None:
    url = (await client.post(PAGES, json=page_body(), headers=owner.headers)
           ).headers["location"]
    for text in ("first", "second", "third"):
        await client.post(f"{url}/notes", json={"status": "info", "text": text},
                          headers=owner.headers)
    first = (await client.get(f"{url}/notes?limit=2", headers=owner.headers)).json()
    rest = (await client.get(f"{url}/notes?limit=2&cursor={first['next_cursor']}",
                             headers=owner.headers)).json()
    assert [n["text"] for n in first["items"] + rest["items"]] == ["third", "second", "first"]


async def test_bad_notes_name_the_field(client: httpx.AsyncClient, owner: Person,
                                        stranger: Person, database_url: str) -> None:
    theirs = await incident(database_url, stranger.org_id,
                            await add_monitor(client, stranger, "theirs"))
    url = (await client.post(PAGES, json=page_body(), headers=owner.headers)
           ).headers["location"]
    answer = await client.post(f"{url}/notes", headers=owner.headers,
                               json={"status": "broken", "text": "  "})
    assert {e["field"] for e in answer.json()["errors"]} == {"status", "text"}
    foreign = await client.post(f"{url}/notes", headers=owner.headers, json={
        "status": "info", "text": "x", "incident_id": theirs})
    assert foreign.status_code == 422
    assert foreign.json()["errors"] == [{"field": "incident_id", "message":
                                         f"no incident {theirs} in this organisation"}]
    assert (await client.get(f"{url}/notes", headers=owner.headers)).json()["items"] == []


async def test_a_note_is_reached_only_through_its_own_page(client: httpx.AsyncClient,
                                                           owner: Person) -> None:
    first = (await client.post(PAGES, json=page_body(slug="first"), headers=owner.headers)
             ).json()["id"]
    second = (await client.post(PAGES, json=page_body(slug="second"), headers=owner.headers)
              ).json()["id"]
    note = (await client.post(f"{PAGES}/{first}/notes", json={"status": "info", "text": "x"},
                              headers=owner.headers)).json()["id"]
    wrong = f"{PAGES}/{second}/notes/{note}"
    assert (await client.get(wrong, headers=owner.headers)).status_code == 404
    assert (await client.delete(wrong, headers=owner.headers)).status_code == 404
