"""Confirming a new user's address: sign-up sends one message (to the user's own email
point) whose link or code confirms both the point and the account."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import delete, update

from dozor.store import notify_tables as n
from dozor.store.db import create_engine
from tests.api.conftest import Mailbox, Person, audit_actions, body

CONFIRMATION = "Dozor code"


async def confirmed(client: httpx.AsyncClient, person: Person) -> bool:
    me = (await client.get("/api/v1/account", headers=person.headers)).json()
    return bool(me["user"]["email_confirmed"])


async def age_verifications(database_url: str, by: timedelta) -> None:
    """Make the confirmation messages sent so far look ``by`` old."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(update(n.verifications)
                                 .values(created_at=datetime.now(UTC) - by))
    await engine.dispose()


async def test_the_link_in_the_sign_up_mail_confirms_the_account(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox, database_url: str) -> None:
    assert not await confirmed(client, owner)
    [mail] = await mailbox.wait(owner.email, CONFIRMATION)
    link = re.search(r"http://dozor\.test/confirm/[\w-]+", body(mail))
    assert link is not None
    assert (await client.post(link.group())).status_code == 200  # the page's button
    assert await confirmed(client, owner)
    assert ("email_confirmed", 1, None) in await audit_actions(database_url, owner.org_id)


async def test_the_code_in_the_mail_confirms_the_account(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox) -> None:
    code = await mailbox.code(owner.email)
    wrong = await client.post("/api/v1/account/email/confirm", json={"code": "000000"},
                              headers=owner.headers)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "code"
    assert not await confirmed(client, owner)
    right = await client.post("/api/v1/account/email/confirm", json={"code": code},
                              headers=owner.headers)
    assert right.status_code == 204 and await confirmed(client, owner)
    again = await client.post("/api/v1/account/email/confirm", json={"code": code},
                              headers=owner.headers)
    assert again.status_code == 409


async def test_wrong_codes_use_up_the_confirmation(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox) -> None:
    code = await mailbox.code(owner.email)
    for _ in range(5):
        await client.post("/api/v1/account/email/confirm", json={"code": "000000"},
                          headers=owner.headers)
    late = await client.post("/api/v1/account/email/confirm", json={"code": code},
                             headers=owner.headers)
    assert late.status_code == 422 and "ask for a new code" in late.json()["detail"]
    assert not await confirmed(client, owner)


async def test_the_confirmation_can_be_sent_again_after_a_minute(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox, database_url: str) -> None:
    soon = await client.post("/api/v1/account/email/confirmation", headers=owner.headers)
    assert soon.status_code == 429 and 0 < int(soon.headers["retry-after"]) <= 61
    await age_verifications(database_url, timedelta(minutes=2))
    again = await client.post("/api/v1/account/email/confirmation", headers=owner.headers)
    assert again.status_code == 202, again.text
    code = await mailbox.code(owner.email, count=2)
    assert (await client.post("/api/v1/account/email/confirm", json={"code": code},
                              headers=owner.headers)).status_code == 204
    done = await client.post("/api/v1/account/email/confirmation", headers=owner.headers)
    assert done.status_code == 409


async def test_asking_again_and_again_is_rate_limited(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    statuses = []
    for _ in range(6):
        await age_verifications(database_url, timedelta(hours=2))
        answer = await client.post("/api/v1/account/email/confirmation",
                                   headers=owner.headers)
        statuses.append(answer.status_code)
    assert statuses == [202] * 5 + [429] and int(answer.headers["retry-after"]) > 3000


async def test_a_removed_own_point_is_made_again(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox, database_url: str) -> None:
    await mailbox.code(owner.email)  # the sign-up's
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(delete(n.contacts))
    await engine.dispose()
    again = await client.post("/api/v1/account/email/confirmation", headers=owner.headers)
    assert again.status_code == 202
    code = await mailbox.code(owner.email, count=2)
    assert (await client.post("/api/v1/account/email/confirm", json={"code": code},
                              headers=owner.headers)).status_code == 204


async def test_a_read_token_cannot_ask_for_a_confirmation(
        client: httpx.AsyncClient, viewer: Person) -> None:
    answer = await client.post("/api/v1/account/email/confirmation", headers=viewer.headers)
    assert answer.status_code == 403
