"""Sign-up, log-in, tokens, two-factor log-in, and the errors people meet."""

from __future__ import annotations

import httpx
import pyotp

from tests.api.conftest import PASSWORD, Person, sign_up


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


async def test_two_factor_log_in_needs_the_code(client: httpx.AsyncClient,
                                                owner: Person) -> None:
    secret = (await client.post("/api/v1/account/two-factor",
                                headers=owner.headers)).json()["secret"]
    wrong = await client.post("/api/v1/account/two-factor/confirm", json={"code": "000000"},
                              headers=owner.headers)
    assert wrong.status_code == 422
    ok = await client.post("/api/v1/account/two-factor/confirm",
                           json={"code": pyotp.TOTP(secret).now()}, headers=owner.headers)
    assert ok.status_code == 204
    login = {"email": owner.email, "password": PASSWORD}
    assert (await client.post("/api/v1/sessions", json=login)).status_code == 401
    with_code = await client.post("/api/v1/sessions",
                                  json=login | {"code": pyotp.TOTP(secret).now()})
    assert with_code.status_code == 201


async def test_sign_up_is_closed_unless_the_setting_opens_it(
        client: httpx.AsyncClient, owner: Person) -> None:
    client._transport.app.state.settings = client._transport.app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"signup": False})
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
