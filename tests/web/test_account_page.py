"""The account page: who you are, your password, your API tokens (shown once, revoked).
Everything here is the person's own, so viewers and sub-accounts have it too, within
what the API allows them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
from sqlalchemy import update

from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.api.conftest import PASSWORD, Person, sub_account
from tests.web.conftest import Browse, Browser

NEW_PASSWORD = "a brand new passphrase"


def shown_token(page: httpx.Response) -> str:
    found = re.search(r"<code>(dzr_[\w-]+)</code>", page.text)
    assert found is not None, "no token on the page"
    return found.group(1)


async def test_the_page_says_who_you_are(owner_browser: Browser) -> None:
    page = await owner_browser.get("/account")
    assert page.status_code == 200
    for shown in ("Olga Owner", "owner@example.com", "unconfirmed", "owner", "off"):
        assert shown in page.text


async def test_a_token_is_shown_once_works_and_is_revoked(
        client: httpx.AsyncClient, owner_browser: Browser) -> None:
    created = await owner_browser.post("/account/tokens", {"name": "deploy bot",
                                                           "scope": "write"})
    assert created.status_code == 201
    token = shown_token(created)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/account", headers=headers)).status_code == 200
    page = await owner_browser.get("/account")
    assert "deploy bot" in page.text and token not in page.text  # its prefix only
    token_id = (await client.get("/api/v1/tokens", headers=headers)).json()["items"][-1]["id"]
    revoked = await owner_browser.post(f"/account/tokens/{token_id}/revoke")
    assert revoked.status_code == 303
    assert (await client.get("/api/v1/account", headers=headers)).status_code == 401


async def test_bad_token_fields_are_named(client: httpx.AsyncClient, owner: Person,
                                          owner_browser: Browser) -> None:
    before = (await client.get("/api/v1/tokens", headers=owner.headers)).json()["items"]
    for fields, field_value in (({"name": "", "scope": "read"}, 'name="name" value=""'),
                                ({"name": "x", "expires_in_days": "0"}, 'value="0"')):
        answer = await owner_browser.post("/account/tokens", fields)
        assert answer.status_code == 422 and '<p class="error">' in answer.text
        assert field_value in answer.text
    after = (await client.get("/api/v1/tokens", headers=owner.headers)).json()["items"]
    assert after == before


async def test_a_password_is_changed_with_the_current_one(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser) -> None:
    wrong = await owner_browser.post("/account/password", {
        "current_password": "not it at all", "new_password": NEW_PASSWORD})
    assert wrong.status_code == 422 and '<p class="error">wrong password</p>' in wrong.text
    short = await owner_browser.post("/account/password", {
        "current_password": PASSWORD, "new_password": "short"})
    assert short.status_code == 422 and "at least 10 characters" in short.text
    changed = await owner_browser.post("/account/password", {
        "current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert changed.status_code == 303
    assert (await owner_browser.get("/account")).status_code == 200  # this session stays
    old = await client.post("/api/v1/sessions", json={"email": owner.email,
                                                      "password": PASSWORD})
    assert old.status_code == 401
    new = await client.post("/api/v1/sessions", json={"email": owner.email,
                                                      "password": NEW_PASSWORD})
    assert new.status_code == 201


async def test_a_viewer_makes_read_tokens_only(viewer_browser: Browser) -> None:
    page = await viewer_browser.get("/account")
    assert '<option value="write"' not in page.text
    refused = await viewer_browser.post("/account/tokens", {"name": "w", "scope": "write"})
    assert refused.status_code == 403
    created = await viewer_browser.post("/account/tokens", {"name": "r", "scope": "read"})
    assert created.status_code == 201 and shown_token(created)


async def test_a_stranger_cannot_revoke_anothers_token(
        client: httpx.AsyncClient, owner: Person, stranger_browser: Browser) -> None:
    [token] = (await client.get("/api/v1/tokens", headers=owner.headers)).json()["items"]
    answer = await stranger_browser.post(f"/account/tokens/{token['id']}/revoke")
    assert answer.status_code == 404
    assert (await client.get("/api/v1/account", headers=owner.headers)).status_code == 200


async def test_a_sub_account_has_its_own_account_page(
        client: httpx.AsyncClient, owner: Person, browse: Browse) -> None:
    member = await sub_account(client, owner, "client@example.com", ["client"])
    limited = await browse(member.email, owner.org_id)
    page = await limited.get("/account")
    assert page.status_code == 200 and "monitors tagged" in page.text and "client" in page.text


async def test_the_page_says_what_is_kept_and_until_when(
        owner_browser: Browser, stranger_browser: Browser, viewer_browser: Browser,
        stranger: Person, database_url: str) -> None:
    mine = (await owner_browser.get("/account")).text
    assert "What we keep, and until when" in mine
    assert "kept while the organisation exists" in mine  # self-hosted
    assert "365 days after sending" in mine and "Raw check results" in mine
    until = datetime(2027, 3, 1, tzinfo=UTC)
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(update(t.organizations).where(t.organizations.c.id ==
                                                         stranger.org_id)
                           .values(plan="paid", paid_until=until))
    await engine.dispose()
    theirs = (await stranger_browser.get("/account")).text
    assert "deleted on <strong>2029-03-01</strong>" in theirs
    assert "731 days after the paid period ends (2027-03-01)" in theirs
    await stranger_browser.post("/language", {"language": "pl", "next": "/account"})
    polish = (await stranger_browser.get("/account")).text
    assert "Co przechowujemy i do kiedy" in polish and "2029-03-01" in polish
    assert "What we keep" not in (await viewer_browser.get("/account")).text
