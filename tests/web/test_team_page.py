"""The team page: people and roles; owners and admins invite, change roles and remove
through the forms, with the API's rules (the last owner stays); viewers only read."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import Person, sub_account
from tests.web.conftest import Browse, Browser

VIEWER_ID = 3  # the viewer fixture's user: after the owner (1) and the stranger (2)


async def roles(client: httpx.AsyncClient, owner: Person) -> dict[str, Any]:
    listed = await client.get("/api/v1/members", headers=owner.headers)
    return {p["email"]: (p["role"], p["pending"]) for p in listed.json()["items"]}


async def test_an_owner_invites_changes_a_role_and_removes(
        client: httpx.AsyncClient, owner: Person, viewer: Person,
        owner_browser: Browser) -> None:
    page = await owner_browser.get("/team")
    assert page.status_code == 200 and "Vera Viewer" in page.text
    assert "/team/members" in owner_browser.forms(page)
    invited = await owner_browser.post("/team/members", {"email": "new@example.com",
                                                         "role": "member", "name": "Nowy"})
    assert invited.status_code == 303 and invited.headers["location"] == "/team"
    changed = await owner_browser.post(f"/team/members/{VIEWER_ID}/role", {"role": "admin"})
    assert changed.status_code == 303
    assert await roles(client, owner) == {
        "owner@example.com": ("owner", False), "viewer@example.com": ("admin", False),
        "new@example.com": ("member", True)}
    page = await owner_browser.get("/team")
    assert "Nowy" in page.text and "invited" in page.text
    removed = await owner_browser.post(f"/team/members/{VIEWER_ID}/remove")
    assert removed.status_code == 303
    assert "viewer@example.com" not in await roles(client, owner)


async def test_bad_input_is_named_and_changes_nothing(
        client: httpx.AsyncClient, owner: Person, viewer: Person,
        owner_browser: Browser) -> None:
    before = await roles(client, owner)
    bad_email = await owner_browser.post("/team/members", {"email": "not-an-address",
                                                           "role": "member"})
    assert bad_email.status_code == 422
    assert '<p class="error">' in bad_email.text and 'value="not-an-address"' in bad_email.text
    again = await owner_browser.post("/team/members", {"email": "viewer@example.com",
                                                       "role": "member"})
    assert again.status_code == 409 and "already a member" in again.text
    bad_role = await owner_browser.post(f"/team/members/{VIEWER_ID}/role", {"role": "god"})
    assert bad_role.status_code == 422
    last_owner = await owner_browser.post("/team/members/1/role", {"role": "member"})
    assert last_owner.status_code == 409 and "last owner" in last_owner.text
    assert await roles(client, owner) == before


async def test_a_viewer_reads_without_forms_and_is_refused_on_post(
        client: httpx.AsyncClient, owner: Person, viewer: Person,
        viewer_browser: Browser) -> None:
    before = await roles(client, owner)
    page = await viewer_browser.get("/team")
    assert page.status_code == 200 and "Olga Owner" in page.text
    assert viewer_browser.forms(page) == []
    for path, data in (("/team/members", {"email": "x@example.com", "role": "member"}),
                       ("/team/members", {"email": "bad", "role": "member"}),
                       ("/team/members/1/role", {"role": "viewer"}),
                       ("/team/members/1/role", {"role": "god"}),
                       ("/team/members/1/remove", {})):
        assert (await viewer_browser.post(path, data)).status_code == 403, path
    assert await roles(client, owner) == before


async def test_a_stranger_reaches_nobody_of_another_organisation(
        client: httpx.AsyncClient, owner: Person, viewer: Person,
        stranger_browser: Browser) -> None:
    before = await roles(client, owner)
    page = await stranger_browser.get("/team")
    assert "Vera Viewer" not in page.text and "Stan Stranger" in page.text
    for path, data in ((f"/team/members/{VIEWER_ID}/role", {"role": "admin"}),
                       (f"/team/members/{VIEWER_ID}/remove", {})):
        assert (await stranger_browser.post(path, data)).status_code == 404, path
    assert await roles(client, owner) == before


async def test_a_sub_account_is_refused(client: httpx.AsyncClient, owner: Person,
                                        browse: Browse) -> None:
    member = await sub_account(client, owner, "client@example.com", ["client"])
    limited = await browse(member.email, owner.org_id)
    page = await limited.get("/team")
    assert page.status_code == 403 and "Olga Owner" not in page.text
    assert (await limited.post("/team/members/1/remove")).status_code == 403


async def test_a_sub_account_is_invited_and_its_tags_changed(
        client: httpx.AsyncClient, owner: Person, viewer: Person,
        owner_browser: Browser) -> None:
    invited = await owner_browser.post("/team/members", {
        "email": "client@example.com", "role": "viewer", "monitor_tags": "client, web"})
    assert invited.status_code == 303
    listed = (await client.get("/api/v1/members", headers=owner.headers)).json()["items"]
    assert [p["monitor_tags"] for p in listed if p["email"] == "client@example.com"] == [
        ["client", "web"]]
    limited = await owner_browser.post(f"/team/members/{VIEWER_ID}/role", {
        "role": "member", "monitor_tags": "web"})
    assert limited.status_code == 303
    admin = await owner_browser.post(f"/team/members/{VIEWER_ID}/role", {
        "role": "admin", "monitor_tags": "web"})
    assert admin.status_code == 422 and f"user {VIEWER_ID}, monitor_tags" in admin.text
    listed = (await client.get("/api/v1/members", headers=owner.headers)).json()["items"]
    assert [(p["role"], p["monitor_tags"]) for p in listed
            if p["user_id"] == VIEWER_ID] == [("member", ["web"])]
    whole = await owner_browser.post(f"/team/members/{VIEWER_ID}/role", {
        "role": "admin", "monitor_tags": ""})
    assert whole.status_code == 303
    assert (await roles(client, owner))["viewer@example.com"] == ("admin", False)
