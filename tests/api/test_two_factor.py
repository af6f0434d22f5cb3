"""Two-factor log-in: turning it on (recovery codes shown once), logging in with a code
or a recovery code (each once), and turning it off with a current code."""

from __future__ import annotations

from typing import Any

import httpx
import pyotp
from sqlalchemy import select

from dozor.store import account_tables as a
from dozor.store.db import create_engine
from tests.api.conftest import PASSWORD, Person, audit_actions, log_in

LOGIN = {"email": "owner@example.com", "password": PASSWORD}


async def turn_on(client: httpx.AsyncClient, person: Person) -> tuple[pyotp.TOTP, list[str]]:
    secret = (await client.post("/api/v1/account/two-factor",
                                headers=person.headers)).json()["secret"]
    totp = pyotp.TOTP(secret)
    confirmed = await client.post("/api/v1/account/two-factor/confirm",
                                  json={"code": totp.now()}, headers=person.headers)
    assert confirmed.status_code == 200, confirmed.text
    return totp, confirmed.json()["recovery_codes"]


async def turn_off(client: httpx.AsyncClient, person: Person,
                   **factor: Any) -> httpx.Response:
    return await client.request("DELETE", "/api/v1/account/two-factor", json=factor,
                                headers=person.headers)


async def test_two_factor_log_in_needs_the_code(client: httpx.AsyncClient,
                                                owner: Person) -> None:
    secret = (await client.post("/api/v1/account/two-factor",
                                headers=owner.headers)).json()["secret"]
    wrong = await client.post("/api/v1/account/two-factor/confirm", json={"code": "000000"},
                              headers=owner.headers)
    assert wrong.status_code == 422
    ok = await client.post("/api/v1/account/two-factor/confirm",
                           json={"code": pyotp.TOTP(secret).now()}, headers=owner.headers)
    assert ok.status_code == 200
    assert (await client.post("/api/v1/sessions", json=LOGIN)).status_code == 401
    with_code = await client.post("/api/v1/sessions",
                                  json=LOGIN | {"code": pyotp.TOTP(secret).now()})
    assert with_code.status_code == 201


async def test_recovery_codes_are_shown_once_and_stored_hashed(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    totp, codes = await turn_on(client, owner)
    assert len(set(codes)) == 10 and all(len(code) == 19 for code in codes)
    again = await client.post("/api/v1/account/two-factor/confirm",
                              json={"code": totp.now()}, headers=owner.headers)
    assert again.status_code == 409  # no second look at them, no new ones
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        stored = (await connection.execute(
            select(a.recovery_codes.c.code_hash))).scalars().all()
    await engine.dispose()
    assert len(stored) == 10 and not set(codes) & set(stored)


async def test_each_recovery_code_logs_in_once_instead_of_a_code(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    _, codes = await turn_on(client, owner)
    first = await client.post("/api/v1/sessions",
                              json=LOGIN | {"recovery_code": codes[0].upper()})
    assert first.status_code == 201 and first.json()["recovery_codes_left"] == 9
    reused = await client.post("/api/v1/sessions", json=LOGIN | {"recovery_code": codes[0]})
    assert reused.status_code == 401
    wrong = await client.post("/api/v1/sessions",
                              json=LOGIN | {"recovery_code": "aaaa-bbbb-cccc-dddd"})
    assert wrong.status_code == 401
    bad_password = await client.post("/api/v1/sessions", json=LOGIN | {
        "password": "wrong password", "recovery_code": codes[1]})
    assert bad_password.status_code == 401
    assert await log_in(client, owner.email, recovery_code=codes[1])  # not spent above
    actions = [action for action, *_ in await audit_actions(database_url, owner.org_id)]
    assert actions.count("recovery_code_used") == 2


async def test_turning_two_factor_off_needs_a_current_code(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    totp, _ = await turn_on(client, owner)
    wrong = await turn_off(client, owner, code="000000")
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "code"
    neither = await turn_off(client, owner)
    assert neither.status_code == 422
    assert (await turn_off(client, owner, code=totp.now())).status_code == 204
    assert (await client.post("/api/v1/sessions", json=LOGIN)).status_code == 201
    assert (await turn_off(client, owner, code=totp.now())).status_code == 409
    assert ("totp_disabled", 1, None) in await audit_actions(database_url, owner.org_id)


async def test_a_recovery_code_also_turns_two_factor_off(
        client: httpx.AsyncClient, owner: Person) -> None:
    _, codes = await turn_on(client, owner)
    used = await turn_off(client, owner, recovery_code=codes[3])
    assert used.status_code == 204
    # Turned on again: new codes, and the old ones are gone.
    _, fresh = await turn_on(client, owner)
    assert not set(fresh) & set(codes)
    old = await client.post("/api/v1/sessions", json=LOGIN | {"recovery_code": codes[4]})
    assert old.status_code == 401


async def test_guessing_codes_to_turn_it_off_is_rate_limited(
        client: httpx.AsyncClient, owner: Person) -> None:
    await turn_on(client, owner)
    statuses = [(await turn_off(client, owner, code="000000")).status_code
                for _ in range(11)]
    assert statuses == [422] * 10 + [429]


async def test_a_read_token_cannot_turn_it_off(client: httpx.AsyncClient,
                                               viewer: Person) -> None:
    assert (await turn_off(client, viewer, code="000000")).status_code == 403
