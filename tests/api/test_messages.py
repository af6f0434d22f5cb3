"""The delivery log over the API: messages newest first and filtered, one message with
every attempt and receipt; never a channel's settings or a confirmation code."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, get_args

import httpx
from sqlalchemy import select

from dozor.api.messages import Status
from dozor.notify import outbox
from dozor.notify.outbox import FINISHED, UNFINISHED
from dozor.store import notify_tables as n
from tests.api import seed
from tests.api.conftest import Person, listed_ids
from tests.api.seed import AT

URL = "/api/v1/messages"
SECRET = "smsapi-token-never-shown"


async def _log(database_url: str, org_id: int) -> dict[str, Any]:
    """Two contacts, a channel with a secret, and messages of each kind of fate."""
    async with seed.database(database_url) as db:
        ala, [email, hook] = await seed.contact(db, org_id, "ala", [
            {"kind": "email", "address": "ala@example.com"},
            {"kind": "webhook", "address": "https://hooks.example/x", "secret": SECRET}])
        bob, [sms] = await seed.contact(db, org_id, "bob",
                                        [{"kind": "sms", "address": "+48600100300"}])
        channel = await seed.channel(db, "sms-main", {"token": SECRET})
        sent = await seed.message(db, org_id, contact_id=bob, point_id=sms, status="delivered",
                                  channel_id=channel, provider_id="p-1", parts=1, cost=0.16,
                                  attempts=2, created_at=AT)
        failed = await seed.message(db, org_id, contact_id=ala, point_id=hook, status="failed",
                                    last_error="HTTP 500", created_at=AT + timedelta(minutes=1))
        code = await seed.message(db, org_id, contact_id=ala, point_id=email,
                                  event="verification", subject="Dozor code: 123456",
                                  body="Your Dozor confirmation code is 123456.",
                                  created_at=AT + timedelta(minutes=2))
        await outbox.add_events(db, [
            {"message_id": sent, "at": AT, "kind": "retry", "channel_id": channel,
             "detail": "HTTP 503", "duration_ms": 40},
            {"message_id": sent, "at": AT + timedelta(seconds=30), "kind": "accepted",
             "channel_id": channel, "duration_ms": 35},
            {"message_id": sent, "at": AT + timedelta(seconds=40), "kind": "receipt",
             "detail": "delivered", "provider_code": "DELIVRD"}])
    return {"ala": ala, "bob": bob, "sms": sms, "hook": hook, "sent": sent,
            "failed": failed, "code": code, "channel": channel}


async def ids(client: httpx.AsyncClient, person: Person, query: str = "") -> list[int]:
    return await listed_ids(client, person, f"{URL}{query}")


async def test_messages_are_listed_newest_first_and_filtered(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    signup = await ids(client, owner)  # the code that confirms the owner's address
    log = await _log(database_url, owner.org_id)
    sent, failed, code = log["sent"], log["failed"], log["code"]
    assert await ids(client, owner) == [code, failed, sent, *signup]
    assert await ids(client, owner, "?state=failed") == [failed]
    assert await ids(client, owner, f"?contact_id={log['ala']}") == [code, failed]
    assert await ids(client, owner, f"?point_id={log['sms']}") == [sent]
    minute = (AT + timedelta(minutes=1)).isoformat().replace("+", "%2B")
    assert await ids(client, owner, f"?start={minute}&end=2026-11-21") == [code, failed]
    assert await ids(client, owner, f"?end={minute}&start=2026-11-20") == [sent]
    first = (await client.get(f"{URL}?limit=2", headers=owner.headers)).json()
    assert await ids(client, owner, f"?limit=2&cursor={first['next_cursor']}") == [
        sent, *signup]


async def test_a_message_shows_every_attempt_and_receipt(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    log = await _log(database_url, owner.org_id)
    body = (await client.get(f"{URL}/{log['sent']}", headers=owner.headers)).json()
    assert (body["status"], body["attempts"], body["parts"], body["cost"]) == (
        "delivered", 2, 1, "0.1600")
    assert body["contact"] == {"id": log["bob"], "name": "bob"}
    assert body["point"] == {"id": log["sms"], "kind": "sms"}
    assert body["channel"] == {"id": log["channel"], "name": "sms-main", "kind": "smsapi"}
    assert body["subject"] == "DOWN: shop"
    assert [(e["kind"], e["detail"], e["provider_code"]) for e in body["events"]] == [
        ("retry", "HTTP 503", None), ("accepted", None, None),
        ("receipt", "delivered", "DELIVRD")]


async def test_secrets_and_confirmation_codes_are_never_shown(
        client: httpx.AsyncClient, owner: Person, viewer: Person, database_url: str) -> None:
    log = await _log(database_url, owner.org_id)
    async with seed.database(database_url) as db:  # what sign-up sent the owner
        signup = (await db.execute(select(n.messages).where(
            n.messages.c.org_id == owner.org_id,
            n.messages.c.id.not_in([log["sent"], log["failed"], log["code"]])))).one()
    [owners_code] = re.findall(r"\d{6}", signup.subject)
    texts = [(await client.get(URL, headers=viewer.headers)).text]
    for message_id in (log["sent"], log["failed"], log["code"], signup.id):
        texts.append((await client.get(f"{URL}/{message_id}", headers=viewer.headers)).text)
    for text in texts:
        assert SECRET not in text and "123456" not in text and owners_code not in text
    code = (await client.get(f"{URL}/{log['code']}", headers=viewer.headers)).json()
    assert code["text_withheld"] and code["subject"] is None and code["body"] is None


async def test_another_organisations_messages_are_not_found(
        client: httpx.AsyncClient, owner: Person, stranger: Person, database_url: str) -> None:
    log = await _log(database_url, owner.org_id)
    ours, theirs = await ids(client, owner), await ids(client, stranger)
    assert len(theirs) == 1 and not set(ours) & set(theirs)  # their own sign-up code
    assert await ids(client, stranger, f"?contact_id={log['ala']}") == []
    answer = await client.get(f"{URL}/{log['sent']}", headers=stranger.headers)
    assert answer.status_code == 404 and "shop" not in answer.text


async def test_bad_filters_name_the_field(client: httpx.AsyncClient, owner: Person) -> None:
    for query, field in (("?state=lost", "state"), ("?point_id=one", "point_id"),
                         ("?start=2026-02-01&end=2026-01-01", "end")):
        answer = await client.get(f"{URL}{query}", headers=owner.headers)
        assert answer.status_code == 422
        assert [e["field"] for e in answer.json()["errors"]] == [field]


def test_the_state_filter_knows_every_state_of_the_outbox() -> None:
    assert set(get_args(Status)) == set(UNFINISHED + FINISHED)
