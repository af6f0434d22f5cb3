"""The maintenance page: windows listed, added (one-off or cron, by name, tag or all
monitors), edited with their version and deleted through the forms; bad input named on its
field; who may do what."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import func, select, update

from dozor.store import tables as t
from tests.api import seed
from tests.api.conftest import Person, audit_actions, sub_account
from tests.api.test_incidents import monitor
from tests.web.conftest import Browse, Browser

NIGHTLY = {"name": "Nightly deploy", "schedule": "cron", "cron": "0 3 * * *",
           "duration": "30m", "timezone": "Europe/Warsaw", "monitors": "shop",
           "tags": "web", "start": "", "end": ""}


async def windows(database_url: str) -> int:
    async with seed.database(database_url) as db:
        return int((await db.execute(select(func.count())
                                     .select_from(t.maintenance_windows))).scalar_one())


async def test_an_owner_adds_a_recurring_and_a_one_off_window_and_deletes_one(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser) -> None:
    await monitor(client, owner, "shop")
    page = await owner_browser.get("/maintenance")
    assert page.status_code == 200 and "No maintenance windows." in page.text
    added = await owner_browser.post("/maintenance", NIGHTLY)
    assert added.status_code == 303 and added.headers["location"] == "/maintenance"
    once = await owner_browser.post("/maintenance", {
        "name": "Move", "schedule": "once", "start": "2030-01-05T22:00",
        "end": "2030-01-06T02:00", "timezone": "UTC", "all_monitors": "1"})
    assert once.status_code == 303
    page = await owner_browser.get("/maintenance")
    assert "<code>0 3 * * *</code>" in page.text and "Europe/Warsaw" in page.text
    assert "all monitors" in page.text
    listed = (await client.get("/api/v1/maintenance", headers=owner.headers)).json()["items"]
    assert [(w["name"], w.get("monitors"), w.get("all-monitors")) for w in listed] == [
        ("Nightly deploy", ["shop"], None), ("Move", None, True)]
    deleted = await owner_browser.post(f"/maintenance/{listed[0]['id']}/delete")
    assert deleted.status_code == 303
    left = (await client.get("/api/v1/maintenance", headers=owner.headers)).json()["items"]
    assert [w["name"] for w in left] == ["Move"]


async def test_bad_input_is_named_on_its_field_and_changes_nothing(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str) -> None:
    unknown = await owner_browser.post("/maintenance", NIGHTLY | {"monitors": "nowhere"})
    assert unknown.status_code == 422
    assert "<p class=\"error\">no monitor named &#39;nowhere&#39;</p>" in unknown.text
    assert 'value="nowhere"' in unknown.text  # what was typed stays in the form
    zone = await owner_browser.post("/maintenance", NIGHTLY | {"monitors": "",
                                                               "timezone": "Mars/Base"})
    assert zone.status_code == 422 and "unknown time zone" in zone.text
    backwards = await owner_browser.post("/maintenance", {
        "name": "x", "schedule": "once", "start": "2030-01-06T02:00",
        "end": "2030-01-05T22:00", "all_monitors": "1"})
    assert backwards.status_code == 422 and "must be after start" in backwards.text
    assert await windows(database_url) == 0


async def test_a_viewer_reads_without_forms_and_is_refused_on_post(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        viewer_browser: Browser, database_url: str) -> None:
    await monitor(client, owner, "shop")
    await owner_browser.post("/maintenance", NIGHTLY)
    page = await viewer_browser.get("/maintenance")
    assert page.status_code == 200 and "Nightly deploy" in page.text
    assert viewer_browser.forms(page) == []
    assert (await viewer_browser.post("/maintenance", NIGHTLY | {"name": "v"})).status_code \
        == 403
    window_id = (await client.get("/api/v1/maintenance", headers=owner.headers)
                 ).json()["items"][0]["id"]
    assert (await viewer_browser.post(f"/maintenance/{window_id}/delete")).status_code == 403
    assert await windows(database_url) == 1


async def test_a_stranger_sees_none_and_deletes_nothing(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        stranger_browser: Browser, database_url: str) -> None:
    await monitor(client, owner, "shop")
    await owner_browser.post("/maintenance", NIGHTLY)
    assert "Nightly deploy" not in (await stranger_browser.get("/maintenance")).text
    window_id = (await client.get("/api/v1/maintenance", headers=owner.headers)
                 ).json()["items"][0]["id"]
    assert (await stranger_browser.post(f"/maintenance/{window_id}/delete")).status_code \
        == 404
    assert await windows(database_url) == 1


async def test_a_sub_account_is_refused(client: httpx.AsyncClient, owner: Person,
                                        browse: Browse, database_url: str) -> None:
    member = await sub_account(client, owner, "client@example.com", ["client"])
    limited = await browse(member.email, owner.org_id)
    page = await limited.get("/maintenance")
    assert page.status_code == 403 and "Nightly" not in page.text
    assert 'href="/maintenance"' not in page.text  # nor offered in the header
    refused = await limited.post("/maintenance", NIGHTLY | {"monitors": "", "tags": "client"})
    assert refused.status_code == 403
    assert await windows(database_url) == 0


async def nightly(client: httpx.AsyncClient, owner: Person,
                  owner_browser: Browser) -> dict[str, Any]:
    """The shop's nightly window, added through the form, as the API reads it."""
    await monitor(client, owner, "shop")
    assert (await owner_browser.post("/maintenance", NIGHTLY)).status_code == 303
    [window] = (await client.get("/api/v1/maintenance", headers=owner.headers)
                ).json()["items"]
    return dict(window)


async def stored(client: httpx.AsyncClient, owner: Person, window_id: int) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/maintenance/{window_id}", headers=owner.headers)
    assert answer.status_code == 200, answer.text
    return {k: v for k, v in answer.json().items() if k != "open_now"}


def version_in(page: httpx.Response) -> str:
    found = re.search(r'name="version" value="(\d+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


async def test_a_window_is_edited_on_its_page_and_the_change_is_audited(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str) -> None:
    window = await nightly(client, owner, owner_browser)
    await monitor(client, owner, "api")
    path = f"/maintenance/{window['id']}"
    assert f'href="{path}"' in (await owner_browser.get("/maintenance")).text
    page = await owner_browser.get(path)
    assert page.status_code == 200
    for shown in ('value="Nightly deploy"', 'value="0 3 * * *"', 'value="30m"',
                  'value="Europe/Warsaw"', 'name="monitors" value="shop"',
                  'value="cron" checked'):
        assert shown in page.text, shown
    saved = await owner_browser.post(path, {
        "name": "Move", "schedule": "once", "start": "2030-01-05T22:00",
        "end": "2030-01-06T02:00", "timezone": "Europe/Warsaw", "monitors": "shop, api",
        "tags": "",
        "version": version_in(page)})
    assert saved.status_code == 303 and saved.headers["location"] == "/maintenance"
    now = await stored(client, owner, window["id"])
    assert (now["name"], now["start"], now["end"], now["monitors"], now.get("tags"),
            now.get("cron")) == ("Move", "2030-01-05T22:00:00+01:00",
                                 "2030-01-06T02:00:00+01:00", ["api", "shop"], None, None)
    assert now["version"] > window["version"]
    again = await owner_browser.get(path)  # wall times in its zone, as typed
    assert 'value="2030-01-05T22:00:00"' in again.text and 'value="once" checked' in again.text
    actions = await audit_actions(database_url, owner.org_id)
    assert ("maintenance_changed", "maintenance window Move") in [
        (row[0], row[2]) for row in actions]


async def test_a_bad_edit_is_named_on_its_field_keeps_what_was_typed_and_changes_nothing(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser) -> None:
    window = await nightly(client, owner, owner_browser)
    before = await stored(client, owner, window["id"])
    path = f"/maintenance/{window['id']}"
    version = version_in(await owner_browser.get(path))
    unknown = await owner_browser.post(path, NIGHTLY | {"monitors": "nowhere",
                                                        "version": version})
    assert unknown.status_code == 422
    assert "<p class=\"error\">no monitor named &#39;nowhere&#39;</p>" in unknown.text
    assert 'value="nowhere"' in unknown.text
    zone = await owner_browser.post(path, NIGHTLY | {"timezone": "Mars/Base",
                                                     "version": version})
    assert zone.status_code == 422 and "unknown time zone" in zone.text
    assert 'value="Mars/Base"' in zone.text
    assert await stored(client, owner, window["id"]) == before


async def test_an_edit_of_a_window_changed_meanwhile_is_refused_keeping_what_was_typed(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser) -> None:
    window = await nightly(client, owner, owner_browser)
    path = f"/maintenance/{window['id']}"
    version = version_in(await owner_browser.get(path))
    theirs = await client.patch(f"/api/v1{path}", json={"duration": "1h"}, headers={
        **owner.headers, "If-Match": version.join('""')})
    assert theirs.status_code == 200, theirs.text
    mine = await owner_browser.post(path, NIGHTLY | {"cron": "0 4 * * *",
                                                     "version": version})
    assert mine.status_code == 412
    assert "Someone changed this maintenance window since you opened it" in mine.text
    assert 'value="0 4 * * *"' in mine.text
    now = await stored(client, owner, window["id"])
    assert (now["cron"], now["duration"]) == ("0 3 * * *", "1h")


async def test_a_viewer_has_no_edit_link_and_cannot_edit(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        viewer_browser: Browser) -> None:
    window = await nightly(client, owner, owner_browser)
    before = await stored(client, owner, window["id"])
    path = f"/maintenance/{window['id']}"
    listed = await viewer_browser.get("/maintenance")
    assert "Nightly deploy" in listed.text and f'href="{path}"' not in listed.text
    assert (await viewer_browser.get(path)).status_code == 403
    refused = await viewer_browser.post(path, NIGHTLY | {
        "name": "viewer's", "version": str(window["version"])})
    assert refused.status_code == 403 and "this needs the member role" in refused.text
    assert await stored(client, owner, window["id"]) == before


async def test_a_window_from_a_monitors_file_says_the_next_apply_puts_it_back(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str) -> None:
    window = await nightly(client, owner, owner_browser)
    path = f"/maintenance/{window['id']}"
    notice = "comes from a monitors file (dozor apply)"
    assert notice not in (await owner_browser.get(path)).text
    async with seed.database(database_url) as db:
        await db.execute(update(t.maintenance_windows)
                         .where(t.maintenance_windows.c.id == window["id"])
                         .values(managed_by="yaml"))
    assert notice in (await owner_browser.get(path)).text
