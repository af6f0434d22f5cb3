"""Sign-up, log-in, tokens, and the errors people meet."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from sqlalchemy import insert

from dozor.store import account_tables as a
from dozor.store.db import create_engine
from tests.api.conftest import PASSWORD, Person, audit_actions, bearer, log_in, sign_up


async def test_the_first_user_owns_the_installation_and_gets_a_token(
        client: httpx.AsyncClient, owner: Person) -> None:
    me = await client.get("/api/v1/account", headers=owner.headers)
    assert me.status_code == 200
    body = me.json()
    assert body["role"] == "owner" and body["organisation"]["id"] == 1
    assert body["organisation"]["plan"] == "self-hosted" and body["via"] == "token"
    assert "password_hash" not in me.text and "token_hash" not in me.text


async def test_later_sign_ups_get_an_organisation_of_their_own(
        client: httpx.AsyncClient, owner: Person, stranger: Person) -> None:
    me = (await client.get("/api/v1/account", headers=stranger.headers)).json()
    assert me["organisation"]["id"] != owner.org_id
    assert me["organisation"]["plan"] == "trial" and me["organisation"]["trial_ends_at"]


async def test_bad_input_is_a_problem_naming_the_field(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/signup", json={"email": "nope", "password": "short",
                                                       "name": ""})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in answer.json()["errors"]}
    assert fields == {"email", "password", "name"}


async def test_wrong_passwords_fail_alike_and_are_rate_limited(
        client: httpx.AsyncClient, owner: Person) -> None:
    for email in ("owner@example.com", "nobody@example.com"):
        answer = await client.post("/api/v1/sessions", json={"email": email,
                                                             "password": "wrong password"})
        assert (answer.status_code, answer.json()["detail"]) == (
            401, "wrong email, password or code")
    statuses = [(await client.post("/api/v1/sessions", json={
        "email": "owner@example.com", "password": "wrong password"})).status_code
        for _ in range(12)]
    assert statuses[-1] == 429 and 401 in statuses


async def test_a_token_is_shown_once_listed_without_its_secret_and_revocable(
        client: httpx.AsyncClient, owner: Person) -> None:
    created = await client.post("/api/v1/tokens", json={"name": "ci", "scope": "read"},
                                headers=owner.headers)
    token = created.json()["token"]
    listed = (await client.get("/api/v1/tokens", headers=owner.headers)).json()["items"]
    assert {t["name"] for t in listed} == {"tests", "ci"} and token not in str(listed)
    read_only = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/account", headers=read_only)).status_code == 200
    refused = await client.post("/api/v1/tokens", json={"name": "x"}, headers=read_only)
    assert refused.status_code == 403
    revoked = await client.delete(f"/api/v1/tokens/{created.json()['id']}",
                                  headers=owner.headers)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/account", headers=read_only)).status_code == 401


async def test_sign_up_is_closed_unless_the_setting_opens_it(
        app: FastAPI, client: httpx.AsyncClient, owner: Person) -> None:
    app.state.settings = app.state.settings.model_copy(update={"signup": False})
    answer = await client.post("/api/v1/signup", json={
        "email": "late@example.com", "password": PASSWORD, "name": "Late"})
    assert answer.status_code == 403


async def test_requests_without_a_token_are_told_how_to_authenticate(
        client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/account")
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/api/v1/account", headers={
        "Authorization": "Bearer dzr_nope"})).status_code == 401


async def test_an_address_is_registered_once(client: httpx.AsyncClient, owner: Person) -> None:
    again = await client.post("/api/v1/signup", json={
        "email": "OWNER@example.com", "password": PASSWORD, "name": "Copy"})
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "email"
    assert await sign_up(client, "second@example.com", "Second")


async def test_ten_wrong_passwords_lock_the_account_for_a_while(
        app: FastAPI, client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    wrong = {"email": owner.email, "password": "wrong password"}
    await app.state.limits.clear()  # forget the fixture's log-in
    for _ in range(10):
        assert (await client.post("/api/v1/sessions", json=wrong)).status_code == 401
    await app.state.limits.clear()  # the limit would answer first; the lock-out is the point
    right = await client.post("/api/v1/sessions", json={"email": owner.email,
                                                        "password": PASSWORD})
    assert right.status_code == 401
    failures = [e for e in await audit_actions(database_url) if e[0] == "login_failed"]
    assert len(failures) == 11  # each failure is recorded, though the request failed


async def test_a_member_of_two_organisations_chooses_one_at_log_in(
        client: httpx.AsyncClient, owner: Person, stranger: Person, database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(insert(a.memberships).values(
            user_id=1, org_id=stranger.org_id, role="viewer", created_at=datetime.now(UTC)))
    await engine.dispose()
    first = await log_in(client, owner.email)
    chosen = await log_in(client, owner.email, organisation_id=stranger.org_id)
    home = (await client.get("/api/v1/account", headers=bearer(first))).json()
    other = (await client.get("/api/v1/account", headers=bearer(chosen))).json()
    assert home["organisation"]["id"] == owner.org_id and home["role"] == "owner"
    assert other["organisation"]["id"] == stranger.org_id and other["role"] == "viewer"
    refused = await client.post("/api/v1/sessions", json={
        "email": stranger.email, "password": PASSWORD, "organisation_id": owner.org_id})
    assert refused.status_code == 403


async def test_creating_tokens_is_rate_limited(client: httpx.AsyncClient,
                                               owner: Person) -> None:
    statuses = []
    for number in range(20):
        answer = await client.post("/api/v1/tokens", json={"name": f"t{number}"},
                                   headers=owner.headers)
        statuses.append(answer.status_code)
    assert statuses[:19] == [201] * 19  # the fixture made the first of twenty
    assert statuses[19] == 429 and int(answer.headers["retry-after"]) > 3000


async def test_sign_ups_from_one_address_are_rate_limited(client: httpx.AsyncClient) -> None:
    statuses = [(await client.post("/api/v1/signup", json={
        "email": f"user{number}@example.com", "password": PASSWORD, "name": f"User {number}",
    })).status_code for number in range(11)]
    assert statuses == [201] * 10 + [429]
