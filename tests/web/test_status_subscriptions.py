"""Email subscriptions to a status page, through a real SMTP server: nothing but the
confirmation reaches an address until its link is followed (and POSTed: a GET changes
nothing), notes reach confirmed subscribers only, every note can be unsubscribed from in
one click, and the form tells no one who is subscribed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
from sqlalchemy import select, update

from dozor.notify.guard import Guard, OrgView, Refuse
from dozor.notify.outbox import Claimed
from dozor.notify.subscriber_mail import recipient
from dozor.privacy import keys
from dozor.store import notify_tables as n
from dozor.store import status_tables as st
from dozor.store.db import create_engine
from tests.api.conftest import (
    Mailbox,
    Person,
    app,
    body,
    client,
    fresh_limits_and_cheap_hashes,
    mailbox,
    owner,
)
from tests.api.test_status_public import publish

__all__ = ["app", "client", "fresh_limits_and_cheap_hashes", "mailbox", "owner"]
CONFIRM = "Confirm your subscription"
ALA, BOB = "ala@example.com", "bob@example.com"


async def subscribe(client: httpx.AsyncClient, address: str, slug: str = "acme",
                    **headers: str) -> httpx.Response:
    return await client.post(f"/status/{slug}", data={"email": address}, headers=headers)


async def confirm_link(mailbox: Mailbox, address: str, count: int = 1) -> str:
    text = body((await mailbox.wait(address, CONFIRM, count))[count - 1])
    found = re.search(r"http://dozor\.test(/status/confirm/\S+)", text)
    assert found is not None, text
    return found.group(1)


async def note(client: httpx.AsyncClient, owner: Person, page: str, text: str) -> None:
    posted = await client.post(f"{page}/notes", headers=owner.headers,
                               json={"status": "identified", "text": text})
    assert posted.status_code == 201, posted.text


async def queued(database_url: str, address: str, event: str) -> int:
    """Messages ever queued for ``address`` of this event (sent or not)."""
    engine = create_engine(database_url)
    m = n.messages.c
    async with engine.connect() as connection:
        rows = (await connection.execute(select(m.to_address).where(m.event == event))).all()
    await engine.dispose()
    return sum(row.to_address == address for row in rows)  # sealed: compared once opened


async def test_only_confirmed_subscribers_receive_notes(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox,
        database_url: str) -> None:
    page = await publish(client, owner)
    answer = await subscribe(client, ALA)
    assert answer.status_code == 303 and answer.headers["location"].endswith("subscribed=1"
                                                                             "#subscribe")
    assert "a link to confirm" in (await client.get(answer.headers["location"])).text
    await subscribe(client, BOB)
    link = await confirm_link(mailbox, ALA)
    await note(client, owner, page, "Before anyone confirmed.")
    # A mail scanner opening the link confirms nothing: the page only offers a button.
    shown = await client.get(link)
    assert shown.status_code == 200 and '<form method="post">' in shown.text
    await note(client, owner, page, "Still nobody confirmed.")
    assert await queued(database_url, ALA, "status_note") == 0
    confirmed = await client.post(link, headers={"User-Agent": "Browser/1.0"})
    assert confirmed.status_code == 200 and "Subscription confirmed" in confirmed.text
    assert (await client.post(link)).status_code == 404  # a link confirms once
    await note(client, owner, page, "A faulty switch; it is being replaced.")
    mail = (await mailbox.wait(ALA, "Acme: identified"))[-1]
    assert "A faulty switch" in body(mail) and "Before anyone" not in body(mail)
    assert str(mail["Subject"]) == "Acme: identified"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<http://dozor\.test/status/unsubscribe/\S+>",
                        str(mail["List-Unsubscribe"]))
    assert await queued(database_url, BOB, "status_note") == 0
    assert mailbox.to(BOB, "identified") == []
    engine = create_engine(database_url)
    s = st.status_subscribers.c
    async with engine.connect() as connection:
        ala = await keys.digest_of(connection, "email", ALA)
        row = (await connection.execute(select(
            s.confirmed_at, s.confirmed_ip, s.confirmed_user_agent).where(s.email_digest == ala))
        ).one()
    await engine.dispose()
    assert row.confirmed_at is not None and row.confirmed_user_agent == "Browser/1.0"
    assert row.confirmed_ip == "127.0.0.1"


def unsubscribe_path(mail: EmailMessage) -> str:
    return str(mail["List-Unsubscribe"]).strip("<>").removeprefix("http://dozor.test")


async def test_one_click_unsubscribes_and_a_get_does_not(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox,
        database_url: str) -> None:
    page = await publish(client, owner)
    await subscribe(client, ALA)
    await client.post(await confirm_link(mailbox, ALA))
    await note(client, owner, page, "First.")
    path = unsubscribe_path((await mailbox.wait(ALA, "Acme: identified"))[0])
    offered = await client.get(path)
    assert offered.status_code == 200 and '<form method="post">' in offered.text
    await note(client, owner, page, "Second.")
    await mailbox.wait(ALA, "Acme: identified", count=2)
    # What an RFC 8058 mail client posts.
    done = await client.post(path, content="List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200 and "Unsubscribed" in done.text
    assert (await client.post(path)).status_code == 200  # twice is fine
    assert (await client.post("/status/unsubscribe/nonsense")).status_code == 404
    await note(client, owner, page, "Third.")
    assert await queued(database_url, ALA, "status_note") == 2
    # Subscribing again needs a new confirmation.
    await subscribe(client, ALA)
    await confirm_link(mailbox, ALA, count=2)
    await note(client, owner, page, "Fourth.")
    assert await queued(database_url, ALA, "status_note") == 2


async def test_the_form_tells_nobody_who_is_subscribed(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox,
        database_url: str) -> None:
    await publish(client, owner)
    first = await subscribe(client, ALA)
    await client.post(await confirm_link(mailbox, ALA))
    again = await subscribe(client, ALA)
    new = await subscribe(client, BOB)
    assert {(a.status_code, a.headers["location"]) for a in (first, again, new)} == {
        (303, "/status/acme?subscribed=1#subscribe")}
    await mailbox.wait(BOB, CONFIRM)
    assert await queued(database_url, ALA, "status_confirm") == 1  # confirmed: no new mail
    bad = await subscribe(client, "not an address")
    assert bad.status_code == 422 and "Enter a valid email address." in bad.text
    assert (await subscribe(client, ALA, slug="missing")).status_code == 404


async def test_subscribing_is_rate_limited_per_address_and_per_client(
        client: httpx.AsyncClient, owner: Person) -> None:
    await publish(client, owner)
    for _ in range(3):
        assert (await subscribe(client, ALA)).status_code == 303
    refused = await subscribe(client, "ALA@example.com")
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert "Too many requests" in refused.text
    for index in range(6):
        assert (await subscribe(client, f"person{index}@example.com")).status_code == 303
    assert (await subscribe(client, "one.more@example.com")).status_code == 429


def test_the_guard_refuses_a_note_to_a_subscriber_who_has_not_confirmed() -> None:
    now = datetime.now(UTC)
    message = Claimed(1, 1, None, None, "status_note", "k", "s", "b", "en", 0, now, None,
                      None, to_address=ALA, subscriber_id=7)

    class Row:
        email, confirmed_at, unsubscribed_at, unsubscribe_token = ALA, None, None, "t"

    org = OrgView(1, "Acme", 0, None)
    guard = Guard()
    for subscriber, opted_out in ((Row(), None), (None, None)):
        verdict = guard.judge("status_note", recipient(message, subscriber, opted_out), org,
                              0, now)
        assert isinstance(verdict, Refuse)
    Row.confirmed_at = now
    assert not isinstance(guard.judge("status_note", recipient(message, Row(), None), org,
                                      0, now), Refuse)
    assert isinstance(guard.judge("status_note", recipient(message, Row(), now), org, 0,
                                  now), Refuse)  # the address opted out of everything


async def test_a_link_expires_and_mail_speaks_the_visitors_language(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox,
        database_url: str) -> None:
    await publish(client, owner)
    await subscribe(client, ALA, **{"Accept-Language": "pl-PL,pl;q=0.9"})
    mail = (await mailbox.wait(ALA, "Potwierdź subskrypcję: Acme"))[0]
    link = re.search(r"http://dozor\.test(/status/confirm/\S+)", body(mail))
    assert link is not None
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(update(st.status_subscribers).values(
            requested_at=datetime.now(UTC) - timedelta(days=3)))
    await engine.dispose()
    expired = await client.post(link.group(1), headers={"Accept-Language": "pl"})
    assert expired.status_code == 404 and "Link wygasł" in expired.text


async def test_notes_on_an_unpublished_page_mail_nobody(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox,
        database_url: str) -> None:
    page = await publish(client, owner)
    await subscribe(client, ALA)
    await client.post(await confirm_link(mailbox, ALA))
    await client.patch(page, json={"published": False},
                       headers=owner.headers | {"If-Match": "*"})
    await note(client, owner, page, "A draft.")
    assert await queued(database_url, ALA, "status_note") == 0
    assert (await subscribe(client, BOB)).status_code == 404
