"""Password reset by an emailed token (read from the mail a real SMTP server received),
and changing a password."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from dozor.store import account_tables as a
from dozor.store import notify_tables as n
from dozor.store.db import create_engine
from tests.api.conftest import (
    PASSWORD,
    PUBLIC_URL,
    RESET,
    Mailbox,
    Person,
    audit_actions,
    bearer,
    body,
    log_in,
)

NEW = "a brand new passphrase"


async def ask_reset(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/api/v1/password-reset", json={"email": email})


async def confirm(client: httpx.AsyncClient, token: str,
                  password: str = NEW) -> httpx.Response:
    return await client.post("/api/v1/password-reset/confirm",
                             json={"token": token, "password": password})


async def test_a_reset_token_arrives_by_email_and_sets_a_new_password(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox, database_url: str) -> None:
    session = await log_in(client, owner.email)
    asked = await ask_reset(client, "Owner@Example.com")
    assert asked.status_code == 202
    token = await mailbox.token(owner.email, RESET)
    [mail] = mailbox.to(owner.email, RESET)
    assert "List-Unsubscribe" not in mail
    assert f"{PUBLIC_URL}/password-reset#{token}" in body(mail)
    assert (await confirm(client, token)).status_code == 204
    # Every session ended; the old password is gone, the new one works.
    assert (await client.get("/api/v1/account", headers=bearer(session))).status_code == 401
    old = await client.post("/api/v1/sessions", json={"email": owner.email,
                                                      "password": PASSWORD})
    assert old.status_code == 401
    assert await log_in(client, owner.email, NEW)
    assert ("password_reset", 1, None) in await audit_actions(database_url, owner.org_id)
    # Resetting proved the address: the account's email is confirmed.
    me = (await client.get("/api/v1/account", headers=owner.headers)).json()
    assert me["user"]["email_confirmed"] is True


async def test_asking_for_an_unknown_address_looks_the_same_and_sends_nothing(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox, database_url: str) -> None:
    known = await ask_reset(client, owner.email)
    unknown = await ask_reset(client, "nobody@example.com")
    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    await mailbox.wait(owner.email, RESET)
    assert mailbox.to("nobody@example.com") == []
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        addresses = (await connection.execute(select(n.messages.c.to_address))).scalars()
        assert "nobody@example.com" not in list(addresses)
    await engine.dispose()


async def test_a_token_works_once(client: httpx.AsyncClient, owner: Person,
                                  mailbox: Mailbox) -> None:
    await ask_reset(client, owner.email)
    token = await mailbox.token(owner.email, RESET)
    assert (await confirm(client, token)).status_code == 204
    again = await confirm(client, token, "yet another passphrase")
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "token"
    assert await log_in(client, owner.email, NEW)


async def test_a_wrong_or_expired_token_changes_nothing(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox, database_url: str) -> None:
    wrong = await confirm(client, "dze_not-a-token-we-gave")
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "token"
    await ask_reset(client, owner.email)
    token = await mailbox.token(owner.email, RESET)
    engine = create_engine(database_url)
    async with engine.begin() as connection:  # an hour and a second later
        await connection.execute(update(a.email_tokens).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    await engine.dispose()
    expired = await confirm(client, token)
    assert expired.status_code == 422 and "expired" in expired.json()["detail"]
    assert await log_in(client, owner.email, PASSWORD)


async def test_a_short_password_is_refused_and_the_token_kept(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox) -> None:
    await ask_reset(client, owner.email)
    token = await mailbox.token(owner.email, RESET)
    short = await confirm(client, token, "short")
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "password"
    assert (await confirm(client, token)).status_code == 204


async def test_the_stored_token_is_a_hash_and_the_sent_text_is_removed(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox, database_url: str) -> None:
    await ask_reset(client, owner.email)
    token = await mailbox.token(owner.email, RESET)
    engine = create_engine(database_url)
    query = select(n.messages.c.body, n.messages.c.status).where(
        n.messages.c.event == "password_reset")
    async with asyncio.timeout(10):  # the dispatcher records the send just after it
        while True:
            async with engine.connect() as connection:
                sent = (await connection.execute(query)).one()
                hashes = (await connection.execute(
                    select(a.email_tokens.c.token_hash))).scalars().all()
            if sent.status == "accepted":
                break
            await asyncio.sleep(0.05)
    await engine.dispose()
    assert token not in hashes and token not in sent.body


async def test_reset_requests_are_rate_limited_per_address_and_per_client(
        client: httpx.AsyncClient, owner: Person) -> None:
    statuses = [(await ask_reset(client, "nobody@example.com")).status_code
                for _ in range(4)]
    assert statuses == [202, 202, 202, 429]
    others = [await ask_reset(client, f"someone{i}@example.com") for i in range(7)]
    assert [r.status_code for r in others] == [202] * 6 + [429]  # ten from one address
    assert int(others[-1].headers["retry-after"]) > 0


async def test_changing_the_password_needs_the_current_one_and_ends_other_sessions(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    here, elsewhere = await log_in(client, owner.email), await log_in(client, owner.email)
    wrong = await client.post("/api/v1/account/password", headers=bearer(here), json={
        "current_password": "not my password", "new_password": NEW})
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "current_password"
    changed = await client.post("/api/v1/account/password", headers=bearer(here), json={
        "current_password": PASSWORD, "new_password": NEW})
    assert changed.status_code == 204
    assert (await client.get("/api/v1/account", headers=bearer(here))).status_code == 200
    assert (await client.get("/api/v1/account",
                             headers=bearer(elsewhere))).status_code == 401
    assert await log_in(client, owner.email, NEW)
    assert ("password_changed", 1, None) in await audit_actions(database_url, owner.org_id)


async def test_a_read_token_cannot_change_the_password(
        client: httpx.AsyncClient, viewer: Person) -> None:
    answer = await client.post("/api/v1/account/password", headers=viewer.headers, json={
        "current_password": PASSWORD, "new_password": NEW})
    assert answer.status_code == 403


async def test_the_emailed_link_opens_a_page_that_sets_the_password(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox) -> None:
    await ask_reset(client, owner.email)
    token = await mailbox.token(owner.email, RESET)
    page = await client.get("/password-reset")
    assert page.status_code == 200 and 'name="token"' in page.text
    assert token not in page.text  # the token stays in the browser (the link's fragment)
    form = {"token": token, "password": NEW}
    done = await client.post("/password-reset", data=form)
    assert done.status_code == 200 and "Password set" in done.text
    again = await client.post("/password-reset", data=form)
    assert again.status_code == 422 and "used or expired" in again.text
    assert await log_in(client, owner.email, NEW)
