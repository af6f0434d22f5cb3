"""Your data: the export link, restricting processing and erasing the account from the
dashboard, with the API's rules (the owner's alone) and the API's audit."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from dozor.store import tables as t
from tests.api import seed
from tests.api.conftest import Person, audit_actions
from tests.privacy.test_erasure import slug_of
from tests.web.conftest import Browser


async def test_the_owner_restricts_and_resumes_processing(
        owner_browser: Browser, owner: Person, database_url: str) -> None:
    page = await owner_browser.get("/privacy")
    assert page.status_code == 200
    assert "/api/v1/account/export" in page.text and "Restrict processing" in page.text
    restricted = await owner_browser.post("/privacy/restriction", {"restricted": "true"})
    assert restricted.status_code == 303
    page = await owner_browser.get("/privacy")
    assert "Processing is restricted since" in page.text and "Resume processing" in page.text
    assert (await owner_browser.post("/privacy/restriction",
                                     {"restricted": "false"})).status_code == 303
    assert "Processing is restricted since" not in (await owner_browser.get("/privacy")).text
    actions = [row[0] for row in await audit_actions(database_url, owner.org_id)]
    assert actions.count("restricted") == actions.count("restriction_lifted") == 1


async def test_a_viewer_is_refused_and_an_admins_page_has_no_erasure_form(
        viewer_browser: Browser, database_url: str, owner: Person) -> None:
    assert (await viewer_browser.get("/privacy")).status_code == 403
    refused = await viewer_browser.post("/privacy/erasure", {
        "confirm": await slug_of(database_url, owner.org_id)})
    assert refused.status_code == 403
    async with seed.database(database_url) as db:
        assert await db.scalar(select(t.organizations.c.id)
                               .where(t.organizations.c.id == owner.org_id))


async def test_the_owner_erases_the_account_after_typing_its_slug(
        client: httpx.AsyncClient, owner_browser: Browser, owner: Person,
        database_url: str) -> None:
    wrong = await owner_browser.post("/privacy/erasure", {"confirm": "oops"})
    assert wrong.status_code == 422 and "confirm" in wrong.text
    assert (await client.get("/api/v1/monitors", headers=owner.headers)).status_code == 200
    done = await owner_browser.post("/privacy/erasure", {
        "confirm": await slug_of(database_url, owner.org_id)})
    assert done.status_code == 202 and "Erasure requested" in done.text
    assert (await client.get("/api/v1/monitors", headers=owner.headers)).status_code == 401
    async with seed.database(database_url) as db:
        assert await db.scalar(select(t.organizations.c.id)
                               .where(t.organizations.c.id == owner.org_id)) is None
    assert (await owner_browser.get("/privacy")).status_code in (303, 307)  # to log in
