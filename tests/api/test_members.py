"""Team members: listing, adding (an existing user joins, a new address is invited by
email), changing roles and removing people, with the rules about owners."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.store import account_tables as a
from dozor.store import notify_tables as n
from dozor.store.db import create_engine
from tests.api.conftest import (
    PASSWORD,
    Mailbox,
    Person,
    audit_actions,
    bearer,
    body,
    log_in,
    sign_up,
)

INVITED = "invited you to"


async def add(client: httpx.AsyncClient, by: Person, email: str,
              role: str = "member") -> httpx.Response:
    return await client.post("/api/v1/members", json={"email": email, "role": role},
                             headers=by.headers)


async def set_role(client: httpx.AsyncClient, by: Person, user_id: int,
                   role: str) -> httpx.Response:
    return await client.patch(f"/api/v1/members/{user_id}", json={"role": role},
                              headers=by.headers)


async def roles(client: httpx.AsyncClient, by: Person) -> dict[str, str]:
    listed = (await client.get("/api/v1/members", headers=by.headers)).json()["items"]
    return {m["email"]: m["role"] for m in listed}


async def test_members_are_listed_without_secrets(
        client: httpx.AsyncClient, owner: Person, viewer: Person) -> None:
    answer = await client.get("/api/v1/members", headers=viewer.headers)
    assert answer.status_code == 200
    assert await roles(client, viewer) == {owner.email: "owner", viewer.email: "viewer"}
    assert "hash" not in answer.text and "totp" not in answer.text
    page = (await client.get("/api/v1/members?limit=1", headers=owner.headers)).json()
    rest = (await client.get(f"/api/v1/members?cursor={page['next_cursor']}",
                             headers=owner.headers)).json()
    assert [m["email"] for m in page["items"] + rest["items"]] == [owner.email, viewer.email]


async def test_an_existing_user_joins_at_once_and_is_told(
        client: httpx.AsyncClient, owner: Person, stranger: Person, mailbox: Mailbox,
        database_url: str) -> None:
    added = await add(client, owner, stranger.email, "admin")
    assert added.status_code == 201, added.text
    assert added.json()["role"] == "admin" and added.json()["pending"] is False
    [notice] = await mailbox.wait(stranger.email, "You were added to")
    assert "Olga Owner added you" in body(notice) and "dze_" not in body(notice)
    session = await log_in(client, stranger.email, organisation_id=owner.org_id)
    me = (await client.get("/api/v1/account", headers=bearer(session))).json()
    assert me["organisation"]["id"] == owner.org_id and me["role"] == "admin"
    assert ("member_added", 1, "user 2") in await audit_actions(database_url, owner.org_id)
    again = await add(client, owner, stranger.email)
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "email"


async def test_a_new_address_is_invited_and_chooses_a_password_with_the_token(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox) -> None:
    added = await add(client, owner, "New.Person@Example.com", "viewer")
    assert added.status_code == 201 and added.json()["pending"] is True
    assert added.json()["email"] == "new.person@example.com"
    [invitation] = await mailbox.wait("new.person@example.com", INVITED)
    assert invitation["Subject"] == "Olga Owner invited you to Default organisation on Dozor"
    token = await mailbox.token("new.person@example.com", INVITED)
    # No password works before one is chosen.
    refused = await client.post("/api/v1/sessions", json={
        "email": "new.person@example.com", "password": "!"})
    assert refused.status_code == 401
    accepted = await client.post("/api/v1/password-reset/confirm", json={
        "token": token, "password": PASSWORD})
    assert accepted.status_code == 204
    session = await log_in(client, "new.person@example.com")
    me = (await client.get("/api/v1/account", headers=bearer(session))).json()
    assert me["role"] == "viewer" and me["user"]["email_confirmed"] is True
    listed = (await client.get("/api/v1/members", headers=owner.headers)).json()["items"]
    assert [m["pending"] for m in listed] == [False, False]


async def test_adding_people_needs_an_admin(client: httpx.AsyncClient, owner: Person,
                                            viewer: Person, database_url: str) -> None:
    await set_role(client, owner, 3, "member")
    session = await log_in(client, viewer.email)
    member = Person(viewer.email, session, owner.org_id)
    assert (await add(client, member, "someone@example.com")).status_code == 403
    assert (await add(client, viewer, "someone@example.com")).status_code == 403  # read token
    await set_role(client, owner, 3, "admin")
    admin = member
    assert (await add(client, admin, "someone@example.com")).status_code == 201
    assert (await add(client, admin, "boss@example.com", "owner")).status_code == 403
    assert (await add(client, owner, "boss@example.com", "owner")).status_code == 201


async def test_bad_input_names_the_field_and_adds_nobody(
        client: httpx.AsyncClient, owner: Person) -> None:
    answer = await client.post("/api/v1/members", json={"email": "nope", "role": "king"},
                               headers=owner.headers)
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"email", "role"}
    assert await roles(client, owner) == {owner.email: "owner"}


async def test_only_an_owner_makes_or_unmakes_owners(
        client: httpx.AsyncClient, owner: Person, viewer: Person, database_url: str) -> None:
    assert (await set_role(client, owner, 3, "admin")).status_code == 200
    admin = Person(viewer.email, await log_in(client, viewer.email), owner.org_id)
    assert (await set_role(client, admin, 3, "owner")).status_code == 403
    assert (await set_role(client, admin, 1, "member")).status_code == 403
    changed = await set_role(client, owner, 3, "owner")
    assert changed.status_code == 200 and changed.json()["role"] == "owner"
    # Now an owner, they may demote the first owner (who is no longer the last).
    assert (await set_role(client, admin, 1, "admin")).status_code == 200
    assert await roles(client, owner) == {owner.email: "admin", viewer.email: "owner"}
    log = await audit_actions(database_url, owner.org_id)
    assert ("role_changed", 1, "user 3") in log and ("role_changed", 3, "user 1") in log


async def test_the_last_owner_can_be_neither_demoted_nor_removed(
        client: httpx.AsyncClient, owner: Person, viewer: Person) -> None:
    demoted = await set_role(client, owner, 1, "admin")
    assert demoted.status_code == 409 and "last owner" in demoted.json()["detail"]
    removed = await client.delete("/api/v1/members/1", headers=owner.headers)
    assert removed.status_code == 409
    assert await roles(client, owner) == {owner.email: "owner", viewer.email: "viewer"}


async def test_a_removed_member_loses_tokens_and_sessions_there(
        client: httpx.AsyncClient, owner: Person, viewer: Person, database_url: str) -> None:
    session = await log_in(client, viewer.email)
    assert (await client.get("/api/v1/account", headers=viewer.headers)).status_code == 200
    removed = await client.delete("/api/v1/members/3", headers=owner.headers)
    assert removed.status_code == 204
    for headers in (viewer.headers, bearer(session)):
        assert (await client.get("/api/v1/account", headers=headers)).status_code == 401
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        revoked = (await connection.execute(select(a.api_tokens.c.revoked_at).where(
            a.api_tokens.c.user_id == 3))).scalars().all()
    await engine.dispose()
    assert revoked and all(at is not None for at in revoked)
    assert ("member_removed", 1, "user 3") in await audit_actions(database_url, owner.org_id)
    assert (await client.delete("/api/v1/members/3", headers=owner.headers)).status_code == 404


async def test_a_member_may_leave_but_not_remove_others(
        client: httpx.AsyncClient, owner: Person, viewer: Person) -> None:
    await set_role(client, owner, 3, "member")
    member = Person(viewer.email, await log_in(client, viewer.email), owner.org_id)
    assert (await client.delete("/api/v1/members/1", headers=member.headers)).status_code \
        == 403
    assert (await client.delete("/api/v1/members/3", headers=member.headers)).status_code \
        == 204
    assert await roles(client, owner) == {owner.email: "owner"}


async def test_an_invitation_withdrawn_frees_the_address(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox) -> None:
    added = (await add(client, owner, "maybe@example.com")).json()
    token = await mailbox.token("maybe@example.com", INVITED)
    removed = await client.delete(f"/api/v1/members/{added['user_id']}",
                                  headers=owner.headers)
    assert removed.status_code == 204
    spent = await client.post("/api/v1/password-reset/confirm", json={
        "token": token, "password": PASSWORD})
    assert spent.status_code == 422
    assert await sign_up(client, "maybe@example.com", "Maybe")


async def test_adding_people_is_rate_limited(client: httpx.AsyncClient,
                                             owner: Person) -> None:
    statuses = [(await add(client, owner, f"p{i}@example.com")).status_code
                for i in range(21)]
    assert statuses == [201] * 20 + [429]


async def test_a_notice_to_an_address_that_opted_out_is_refused(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox, database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:  # the owner's address said STOP
        await connection.execute(update(n.contact_points).values(
            opted_out_at=datetime.now(UTC)))
    # A reset they ask for still reaches them; being added elsewhere is not asked for.
    await client.post("/api/v1/password-reset", json={"email": owner.email})
    await mailbox.wait(owner.email, "Reset your Dozor password")
    stranger = await sign_up(client, "stranger@example.com", "Stan Stranger")
    assert (await add(client, stranger, owner.email)).status_code == 201
    query = select(n.messages.c.status, n.messages.c.last_error).where(
        n.messages.c.event == "member_added")
    async with asyncio.timeout(10):
        while (notice := await _one(engine, query)).status in ("queued", "sending"):
            await asyncio.sleep(0.05)
    await engine.dispose()
    assert tuple(notice) == ("refused", "the recipient opted out")
    assert mailbox.to(owner.email, "You were added") == []


async def _one(engine: AsyncEngine, query: Any) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(query)).one()


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(
        client: httpx.AsyncClient, owner: Person, viewer: Person) -> None:
    await set_role(client, owner, 3, "owner")
    other = Person(viewer.email, await log_in(client, viewer.email), owner.org_id)
    answers = await asyncio.gather(set_role(client, owner, 3, "admin"),
                                   set_role(client, other, 1, "admin"))
    # The second to go finds itself no owner any more (403), or the other the last (409).
    assert sorted(answer.status_code for answer in answers) in ([200, 403], [200, 409])
    assert sorted((await roles(client, owner)).values()) == ["admin", "owner"]
