"""The incidents pages: open ones first, one incident's story, acknowledging and
commenting through the forms, and who may do what."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from dozor.store.incident_tables import incident_comments
from tests.api import seed
from tests.api.conftest import Person, sub_account
from tests.api.seed import AT
from tests.api.test_incidents import monitor
from tests.web.conftest import Browse, Browser


async def incidents(client: httpx.AsyncClient, owner: Person,
                    database_url: str) -> tuple[int, int]:
    """(an open incident of "shop", a closed one of "api")."""
    shop, api = await monitor(client, owner, "shop"), await monitor(client, owner, "api")
    async with seed.database(database_url) as db:
        closed = await seed.incident(db, owner.org_id, api, AT - timedelta(hours=5),
                                     AT - timedelta(hours=4), cause="timed out")
        opened = await seed.incident(db, owner.org_id, shop, AT - timedelta(hours=6))
    return opened, closed


async def comments(database_url: str) -> int:
    async with seed.database(database_url) as db:
        return int((await db.execute(select(func.count()).select_from(incident_comments)))
                   .scalar_one())


async def test_the_list_shows_open_incidents_first_and_filters(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str) -> None:
    opened, closed = await incidents(client, owner, database_url)
    page = await owner_browser.get("/incidents")
    assert page.status_code == 200
    assert page.text.index(f"/incidents/{opened}") < page.text.index(f"/incidents/{closed}")
    assert "<td>1h</td>" in page.text  # the closed one lasted an hour
    only_closed = await owner_browser.get("/incidents?state=closed")
    assert f"/incidents/{closed}" in only_closed.text
    assert f"/incidents/{opened}" not in only_closed.text


async def test_an_owner_acknowledges_and_comments(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str) -> None:
    opened, _ = await incidents(client, owner, database_url)
    page = await owner_browser.get(f"/incidents/{opened}")
    assert page.status_code == 200 and "shop" in page.text and "connection refused" in page.text
    assert owner_browser.forms(page) == [f"/incidents/{opened}/acknowledge",
                                         f"/incidents/{opened}/comments"]
    acked = await owner_browser.post(f"/incidents/{opened}/acknowledge")
    assert acked.status_code == 303 and acked.headers["location"] == f"/incidents/{opened}"
    commented = await owner_browser.post(f"/incidents/{opened}/comments",
                                         {"body": "Restarting the <b>database</b>"})
    assert commented.status_code == 303
    page = await owner_browser.get(f"/incidents/{opened}")
    assert "Olga Owner" in page.text
    assert "Restarting the &lt;b&gt;database&lt;/b&gt;" in page.text  # escaped
    assert f"/incidents/{opened}/acknowledge" not in owner_browser.forms(page)
    api = await client.get(f"/api/v1/incidents/{opened}", headers=owner.headers)
    assert api.json()["acknowledgement"]["by"]["name"] == "Olga Owner"


async def test_a_blank_comment_is_shown_as_the_fields_error(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str) -> None:
    opened, _ = await incidents(client, owner, database_url)
    answer = await owner_browser.post(f"/incidents/{opened}/comments", {"body": "   "})
    assert answer.status_code == 422
    assert '<p class="error">must not be blank</p>' in answer.text
    assert await comments(database_url) == 0


async def test_acknowledging_a_closed_incident_is_refused_on_the_page(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str) -> None:
    _, closed = await incidents(client, owner, database_url)
    answer = await owner_browser.post(f"/incidents/{closed}/acknowledge")
    assert answer.status_code == 409 and "is closed" in answer.text


async def test_a_viewer_reads_without_forms_and_is_refused_on_post(
        client: httpx.AsyncClient, owner: Person, viewer_browser: Browser,
        database_url: str) -> None:
    opened, _ = await incidents(client, owner, database_url)
    page = await viewer_browser.get(f"/incidents/{opened}")
    assert page.status_code == 200 and viewer_browser.forms(page) == []
    assert (await viewer_browser.post(f"/incidents/{opened}/acknowledge")).status_code == 403
    for body in ("a comment", ""):
        refused = await viewer_browser.post(f"/incidents/{opened}/comments", {"body": body})
        assert refused.status_code == 403
    assert await comments(database_url) == 0


async def test_a_stranger_finds_nothing(
        client: httpx.AsyncClient, owner: Person, stranger_browser: Browser,
        database_url: str) -> None:
    opened, _ = await incidents(client, owner, database_url)
    assert f"/incidents/{opened}" not in (await stranger_browser.get("/incidents")).text
    assert (await stranger_browser.get(f"/incidents/{opened}")).status_code == 404
    answer = await stranger_browser.post(f"/incidents/{opened}/comments", {"body": "hi"})
    assert answer.status_code == 404
    assert (await stranger_browser.post(f"/incidents/{opened}/acknowledge")).status_code == 404
    assert await comments(database_url) == 0


async def test_without_a_session_the_page_asks_to_log_in(client: httpx.AsyncClient) -> None:
    answer = await client.get("/incidents?state=open")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/incidents%3Fstate%3Dopen"


async def test_a_sub_account_sees_only_its_monitors_incidents(
        client: httpx.AsyncClient, owner: Person, browse: Browse, database_url: str) -> None:
    opened, _ = await incidents(client, owner, database_url)
    created = await client.post("/api/v1/monitors", headers=owner.headers, json={
        "name": "client-site", "kind": "tcp", "host": "127.0.0.1", "port": 9,
        "interval": "5m", "tags": ["client"]})
    async with seed.database(database_url) as db:
        theirs = await seed.incident(db, owner.org_id, created.json()["id"])
    member = await sub_account(client, owner, "client@example.com", ["client"])
    limited = await browse(member.email, owner.org_id)
    page = await limited.get("/incidents")
    assert f"/incidents/{theirs}" in page.text and f"/incidents/{opened}" not in page.text
    assert (await limited.get(f"/incidents/{opened}")).status_code == 404
    assert (await limited.post(f"/incidents/{opened}/comments", {"body": "x"})).status_code \
        == 404
    assert (await limited.post(f"/incidents/{theirs}/comments", {"body": "on it"})) \
        .status_code == 303


async def test_older_closed_incidents_are_a_page_further(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dozor.web.incidents_page.CLOSED_SHOWN", 1)
    opened, closed = await incidents(client, owner, database_url)
    async with seed.database(database_url) as db:
        newer = await seed.incident(db, owner.org_id, 1, AT - timedelta(hours=3),
                                    AT - timedelta(hours=2))
    first = await owner_browser.get("/incidents")
    assert f"/incidents/{opened}\"" in first.text and f"/incidents/{newer}\"" in first.text
    assert f"/incidents/{closed}\"" not in first.text
    assert f"before={newer}" in first.text
    second = await owner_browser.get(f"/incidents?state=closed&before={newer}")
    assert f"/incidents/{closed}\"" in second.text
    assert f"/incidents/{opened}\"" not in second.text and "before=" not in second.text


async def test_a_path_no_page_can_have_answers_a_not_found_page(
        owner_browser: Browser) -> None:
    for path in ("/monitors/0", "/incidents/0", "/contacts/99999999999", "/messages/-1"):
        page = await owner_browser.get(path)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html"), path
        assert "no such page" in page.text, path
