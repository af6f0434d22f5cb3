"""Incidents over the API: listed newest first and filtered, read with their story,
acknowledged (which cancels alerts still waiting), commented on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from dozor.store import notify_tables as n
from dozor.store.incident_tables import incident_comments
from tests.api import seed
from tests.api.conftest import Person, listed_ids
from tests.api.seed import AT

HOUR = timedelta(hours=1)


async def monitor(client: httpx.AsyncClient, person: Person, name: str) -> int:
    created = await client.post("/api/v1/monitors", headers=person.headers, json={
        "name": name, "kind": "tcp", "host": "127.0.0.1", "port": 9, "interval": "5m"})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def ids(client: httpx.AsyncClient, person: Person, query: str = "") -> list[int]:
    return await listed_ids(client, person, f"/api/v1/incidents{query}")


async def shop_incident(client: httpx.AsyncClient, owner: Person, database_url: str,
                        **times: Any) -> int:
    """The id of an incident of a new monitor "shop" (open, unless closed_at is given)."""
    shop = await monitor(client, owner, "shop")
    async with seed.database(database_url) as db:
        return await seed.incident(db, owner.org_id, shop, **times)


async def test_incidents_are_listed_newest_first_and_filtered(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    shop, api = await monitor(client, owner, "shop"), await monitor(client, owner, "api")
    async with seed.database(database_url) as db:
        old = await seed.incident(db, owner.org_id, shop, AT - 5 * HOUR, AT - 4 * HOUR)
        middle = await seed.incident(db, owner.org_id, api, AT - 2 * HOUR)
        new = await seed.incident(db, owner.org_id, shop, AT)
    assert await ids(client, owner) == [new, middle, old]
    assert await ids(client, owner, "?state=open") == [new, middle]
    assert await ids(client, owner, "?state=closed") == [old]
    assert await ids(client, owner, f"?monitor_id={shop}") == [new, old]
    # Open at some moment of the range: the old one had ended, the newest not yet begun.
    window = f"?start={(AT - 3 * HOUR).isoformat()}&end={(AT - HOUR).isoformat()}"
    assert await ids(client, owner, window.replace("+", "%2B")) == [middle]
    first = (await client.get("/api/v1/incidents?limit=2", headers=owner.headers)).json()
    assert [i["id"] for i in first["items"]] == [new, middle]
    rest = await ids(client, owner, f"?limit=2&cursor={first['next_cursor']}")
    assert rest == [old]


async def test_bad_filters_name_the_field(client: httpx.AsyncClient, owner: Person) -> None:
    for query, field in (("?state=sleeping", "state"), ("?monitor_id=x", "monitor_id"),
                         ("?start=2026-01-02&end=2026-01-01", "end"), ("?cursor=!!", "cursor"),
                         ("?limit=0", "limit"), ("?end=9999-12-31T23:00:00-05:00", "end")):
        answer = await client.get(f"/api/v1/incidents{query}", headers=owner.headers)
        assert answer.status_code == 422, query
        assert answer.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_an_incident_tells_its_cause_duration_and_state_changes(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    shop = await monitor(client, owner, "shop")
    async with seed.database(database_url) as db:
        incident_id = await seed.incident(db, owner.org_id, shop, AT, AT + 90 * timedelta(
            seconds=60), cause="connection refused")
    body = (await client.get(f"/api/v1/incidents/{incident_id}", headers=owner.headers)).json()
    assert body["monitor"] == {"id": shop, "name": "shop"}
    assert (body["state"], body["cause"], body["first_error"]) == (
        "closed", "connection refused", "connection_refused")
    assert body["duration_seconds"] == 90 * 60 and body["resolution"] == "recovered"
    assert [(c["previous"], c["current"]) for c in body["state_changes"]] == [
        ("pending", "down"), ("down", "up")]
    assert body["acknowledgement"] is None and body["comments"] == []


async def _statuses(database_url: str) -> dict[int, tuple[str, str | None]]:
    async with seed.database(database_url) as db:
        rows = (await db.execute(select(n.messages.c.id, n.messages.c.status,
                                        n.messages.c.last_error))).all()
    return {row.id: (row.status, row.last_error) for row in rows}


async def test_acknowledging_cancels_the_incidents_alerts_still_waiting(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    shop = await monitor(client, owner, "shop")
    async with seed.database(database_url) as db:
        incident_id = await seed.incident(db, owner.org_id, shop)
        other = await seed.incident(db, owner.org_id, shop, AT - HOUR)
        contact_id, [email, sms] = await seed.contact(db, owner.org_id, "ala", [
            {"kind": "email", "address": "ala@example.com"},
            {"kind": "sms", "address": "+48600100200", "escalation_minutes": 15}])
        on = {"org_id": owner.org_id, "contact_id": contact_id}
        sent = await seed.message(db, incident_id=incident_id, point_id=email,
                                  status="accepted", **on)
        escalation = await seed.message(db, incident_id=incident_id, point_id=sms, **on)
        elsewhere = await seed.message(db, incident_id=other, point_id=sms, **on)
    answer = await client.post(f"/api/v1/incidents/{incident_id}/acknowledge",
                               headers=owner.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["acknowledgement"]["by"] == {"id": 1, "name": "Olga Owner"}
    assert body["cancelled_messages"] == [escalation]
    statuses = await _statuses(database_url)
    assert statuses[escalation] == ("cancelled", "acknowledged before it was sent")
    assert statuses[sent][0] == "accepted" and statuses[elsewhere][0] == "queued"

    again = (await client.post(f"/api/v1/incidents/{incident_id}/acknowledge",
                               headers=owner.headers)).json()
    assert again["acknowledgement"] == body["acknowledgement"]
    assert again["cancelled_messages"] == []
    audit = (await client.get("/api/v1/audit?action=incident_acknowledged",
                              headers=owner.headers)).json()["items"]
    assert [e["target"] for e in audit] == [f"incident {incident_id}"]


async def test_a_closed_incident_cannot_be_acknowledged(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    closed = await shop_incident(client, owner, database_url, closed_at=AT + HOUR)
    answer = await client.post(f"/api/v1/incidents/{closed}/acknowledge",
                               headers=owner.headers)
    assert answer.status_code == 409
    assert (await client.get(f"/api/v1/incidents/{closed}",
                             headers=owner.headers)).json()["acknowledgement"] is None


async def test_comments_are_kept_with_their_author_and_time(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    incident_id = await shop_incident(client, owner, database_url)
    url = f"/api/v1/incidents/{incident_id}/comments"
    first = await client.post(url, json={"body": "  restarting the database  "},
                              headers=owner.headers)
    assert first.status_code == 201, first.text
    assert first.json()["body"] == "restarting the database"
    assert first.json()["author"] == {"id": 1, "name": "Olga Owner"}
    await client.post(url, json={"body": "back up"}, headers=owner.headers)
    page = (await client.get(f"{url}?limit=1", headers=owner.headers)).json()
    rest = (await client.get(f"{url}?cursor={page['next_cursor']}",
                             headers=owner.headers)).json()
    assert [c["body"] for c in page["items"] + rest["items"]] == [
        "restarting the database", "back up"]
    detail = (await client.get(f"/api/v1/incidents/{incident_id}",
                               headers=owner.headers)).json()
    assert [c["body"] for c in detail["comments"]] == ["restarting the database", "back up"]
    async with seed.database(database_url) as db:
        stored = (await db.execute(select(incident_comments))).all()
    assert [(c.user_id, c.org_id) for c in stored] == [(1, owner.org_id)] * 2
    assert first.json()["created_at"] == stored[0].created_at.isoformat()


async def test_a_blank_or_unknown_comment_field_is_refused(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    incident_id = await shop_incident(client, owner, database_url)
    url = f"/api/v1/incidents/{incident_id}/comments"
    bodies: list[tuple[Any, str]] = [({"body": "   "}, "body"), ({}, "body"),
                                     ({"body": "a\x00b"}, "body"),
                                     ({"body": "x", "author": 2}, "author")]
    for body, field in bodies:
        answer = await client.post(url, json=body, headers=owner.headers)
        assert answer.status_code == 422
        assert [e["field"] for e in answer.json()["errors"]] == [field]
    assert (await client.get(url, headers=owner.headers)).json()["items"] == []


async def test_viewers_read_incidents_but_neither_acknowledge_nor_comment(
        client: httpx.AsyncClient, owner: Person, viewer: Person, stranger: Person,
        database_url: str) -> None:
    incident_id = await shop_incident(client, owner, database_url)
    url = f"/api/v1/incidents/{incident_id}"
    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    assert (await client.post(f"{url}/acknowledge", headers=viewer.headers)).status_code == 403
    assert (await client.post(f"{url}/comments", json={"body": "hi"},
                              headers=viewer.headers)).status_code == 403
    assert (await client.get(url, headers=stranger.headers)).status_code == 404
    assert await ids(client, stranger) == []
