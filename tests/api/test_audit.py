"""The audit log over the API: the caller's organisation only, admins and owners only,
newest first, filtered by action and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from dozor.store import account_tables as a
from tests.api import seed
from tests.api.conftest import Person

URL = "/api/v1/audit"


async def test_the_owner_reads_the_organisations_log_newest_first(
        client: httpx.AsyncClient, owner: Person, stranger: Person) -> None:
    body = (await client.get(URL, headers=owner.headers)).json()
    actions = [e["action"] for e in body["items"]]
    assert actions == ["token_created", "login", "signup"]
    signup = body["items"][-1]
    assert signup["user"] == {"id": 1, "email": "owner@example.com", "name": "Olga Owner"}
    theirs = (await client.get(URL, headers=stranger.headers)).json()["items"]
    assert {e["user"]["email"] for e in theirs} == {"stranger@example.com"}


async def test_the_log_pages_and_filters_by_action_and_time(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    async with seed.database(database_url) as db:  # the sign-up happened long ago
        await db.execute(update(a.audit_log).where(a.audit_log.c.action == "signup")
                         .values(at=datetime(2026, 1, 1, tzinfo=UTC)))
    first = (await client.get(f"{URL}?limit=2", headers=owner.headers)).json()
    rest = (await client.get(f"{URL}?limit=2&cursor={first['next_cursor']}",
                             headers=owner.headers)).json()
    assert [e["action"] for e in first["items"] + rest["items"]] == [
        "token_created", "login", "signup"]
    assert rest["next_cursor"] is None
    logins = (await client.get(f"{URL}?action=login", headers=owner.headers)).json()["items"]
    assert [e["action"] for e in logins] == ["login"]
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+", "%2B")
    recent = (await client.get(f"{URL}?start={since}", headers=owner.headers)).json()["items"]
    assert "signup" not in [e["action"] for e in recent] and recent
    old = (await client.get(f"{URL}?end=2026-02-01", headers=owner.headers)).json()["items"]
    assert [e["action"] for e in old] == ["signup"]


async def test_bad_filters_name_the_field(client: httpx.AsyncClient, owner: Person) -> None:
    for query, field in (("?action=dance", "action"), ("?start=2026-02-01&end=2026-01-01",
                                                       "end"), ("?limit=501", "limit")):
        answer = await client.get(f"{URL}{query}", headers=owner.headers)
        assert answer.status_code == 422
        assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_only_admins_and_owners_read_the_log(client: httpx.AsyncClient, owner: Person,
                                                   viewer: Person, database_url: str) -> None:
    assert (await client.get(URL, headers=viewer.headers)).status_code == 403
    for role, expected in (("member", 403), ("admin", 200)):
        async with seed.database(database_url) as db:
            await db.execute(update(a.memberships).where(a.memberships.c.user_id == 3)
                             .values(role=role))
        answer = await client.get(URL, headers=viewer.headers)  # a read token will do
        assert answer.status_code == expected, role
