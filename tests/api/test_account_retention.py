"""GET /api/v1/account/retention: what is kept for how long, and the date the account's
data would be deleted if nothing changes. Owners and admins only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.api.conftest import Person

URL = "/api/v1/account/retention"


async def set_plan(database_url: str, org_id: int, **values: object) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(update(t.organizations).where(t.organizations.c.id == org_id)
                           .values(**values))
    await engine.dispose()


async def test_a_trial_account_is_told_when_it_goes(client: httpx.AsyncClient,
                                                    stranger: Person) -> None:
    answer = await client.get(URL, headers=stranger.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    ends = datetime.fromisoformat(body["trial_ends_at"])
    assert body["plan"] == "trial"
    assert datetime.fromisoformat(body["deleted_at"]) == ends + timedelta(days=92)
    kept = {k["data"]: k for k in body["kept"]}
    assert kept["organisation"] == {"data": "organisation", "kept_for": "92d", "days": 92,
                                    "after": "trial_end"}
    assert kept["messages"]["kept_for"] == "365d" and kept["messages"]["after"] == "finished"
    assert kept["results"]["kept_for"] == "14d" and kept["sessions"]["kept_for"] == "30d"


async def test_a_paid_account_goes_two_years_after_its_period(
        client: httpx.AsyncClient, stranger: Person, database_url: str) -> None:
    until = datetime(2027, 3, 1, tzinfo=UTC)
    await set_plan(database_url, stranger.org_id, plan="paid", paid_until=until)
    body = (await client.get(URL, headers=stranger.headers)).json()
    assert datetime.fromisoformat(body["deleted_at"]) == until + timedelta(days=731)
    assert body["kept"][0]["after"] == "paid_period_end"


async def test_free_and_self_hosted_accounts_are_kept(
        client: httpx.AsyncClient, owner: Person, stranger: Person, database_url: str) -> None:
    mine = (await client.get(URL, headers=owner.headers)).json()
    assert (mine["plan"], mine["deleted_at"]) == ("self-hosted", None)
    assert mine["kept"][0] == {"data": "organisation", "kept_for": None, "days": None,
                               "after": None}
    await set_plan(database_url, stranger.org_id, plan="free")  # the trial became free
    theirs = (await client.get(URL, headers=stranger.headers)).json()
    assert theirs["deleted_at"] is None


async def test_a_viewer_is_refused(client: httpx.AsyncClient, viewer: Person) -> None:
    assert (await client.get(URL, headers=viewer.headers)).status_code == 403
