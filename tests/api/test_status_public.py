"""Public status pages: what anyone reads without signing in. Only published pages, and
nothing private of their monitors; a 90-day history from rollups; a fixed number of
statements however many monitors; cacheable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert, update
from sqlalchemy.engine import Engine

from dozor.core.rollups import DAY, HOUR, Rollup
from dozor.store import status_tables as st
from dozor.store import tables as t
from dozor.store.db import create_engine
from dozor.store.queries import ROLLED_UP, rollup_row
from tests.api.conftest import Person
from tests.api.test_status_pages import PAGES, add_monitor, incident, page_body

PUBLIC = "/api/v1/public/status-pages"
NOW = datetime(2026, 6, 10, 12, 30, tzinfo=UTC)
TODAY = int(NOW.timestamp()) // DAY * DAY


async def run_sql(database_url: str, *statements: Any) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        for statement in statements:
            await connection.execute(statement)
    await engine.dispose()


async def publish(client: httpx.AsyncClient, owner: Person, *monitor_ids: int,
                  **fields: Any) -> str:
    created = await client.post(PAGES, headers=owner.headers,
                                json=page_body(*monitor_ids, published=True, **fields))
    assert created.status_code == 201, created.text
    return str(created.headers["location"])


async def test_an_unpublished_page_is_answered_as_a_missing_one(
        client: httpx.AsyncClient, owner: Person, stranger: Person) -> None:
    shop = await add_monitor(client, owner, "shop")
    created = await client.post(PAGES, headers=owner.headers, json=page_body(
        shop, custom_domain="status.acme.example"))
    missing = await client.get(f"{PUBLIC}/nothing-here")
    assert missing.status_code == 404
    for answer in (await client.get(f"{PUBLIC}/acme"),
                   await client.get(f"{PUBLIC}/acme", headers=owner.headers),
                   await client.get(f"{PUBLIC}/acme", headers=stranger.headers),
                   await client.get(f"{PUBLIC}?domain=status.acme.example")):
        assert (answer.status_code, answer.json()) == (404, missing.json())
        assert "Acme" not in answer.text and "Service" not in answer.text
    url = created.headers["location"]
    await client.patch(url, json={"published": True}, headers=owner.headers | {"If-Match": "*"})
    assert (await client.get(f"{PUBLIC}/acme")).json()["title"] == "Acme"
    await client.patch(url, json={"published": False},
                       headers=owner.headers | {"If-Match": "*"})
    assert (await client.get(f"{PUBLIC}/acme")).status_code == 404


async def test_a_page_is_found_by_its_custom_domain(client: httpx.AsyncClient,
                                                    owner: Person) -> None:
    await publish(client, owner, custom_domain="status.acme.example")
    found = await client.get(f"{PUBLIC}?domain=STATUS.Acme.Example.")
    assert found.status_code == 200 and found.json()["slug"] == "acme"
    assert (await client.get(f"{PUBLIC}?domain=other.example")).status_code == 404
    bad = await client.get(f"{PUBLIC}?domain=not a host")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "domain"
    for slug in ("ACME", "a", "x" * 500):
        assert (await client.get(f"{PUBLIC}/{slug}")).status_code == 404, slug
    assert (await client.get(f"{PUBLIC}/acme%00")).status_code == 422  # NUL: refused


async def test_visitors_see_public_names_and_states_never_targets_or_errors(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    created = await client.post("/api/v1/monitors", headers=owner.headers, json={
        "name": "db-primary backend", "kind": "http",
        "url": "https://db-primary.corp.example:8443/health?key=hunter2"})
    secret = created.json()["id"]
    shop, blog, old = (await add_monitor(client, owner, "Shop"),
                       await add_monitor(client, owner, "Blog"),
                       await add_monitor(client, owner, "Old"))
    incident_id = await incident(database_url, owner.org_id, secret)
    s = t.monitor_state.c
    await run_sql(database_url, *[
        update(t.monitor_state).where(s.monitor_id == m).values(state=state, last_message=msg)
        for m, state, msg in ((secret, "down", "connection refused by 10.20.30.40"),
                              (shop, "pending", "timed out after 10 s"),
                              (blog, "maintenance", None), (old, "paused", None))])
    url = await publish(client, owner, secret, shop)
    page = (await client.patch(url, headers=owner.headers | {"If-Match": "*"}, json={
        "groups": [{"name": "Core", "monitors": [
            {"monitor_id": secret, "display_name": "Database"}, {"monitor_id": shop}]},
            {"name": "Other", "monitors": [{"monitor_id": blog}, {"monitor_id": old}]}]})
        ).json()
    await client.post(f"{url}/notes", headers=owner.headers, json={
        "status": "investigating", "text": "The database is down.",
        "incident_id": incident_id})
    answer = await client.get(f"{PUBLIC}/{page['slug']}")
    body = answer.json()
    assert body["status"] == "partial_outage"
    assert [(g["name"], g["status"], [(m["name"], m["status"]) for m in g["monitors"]])
            for g in body["groups"]] == [
        ("Core", "partial_outage", [("Database", "outage"), ("Shop", "operational")]),
        ("Other", "maintenance", [("Blog", "maintenance"), ("Old", "unknown")])]
    assert body["notes"][0]["thread"] == 1
    for private in ("db-primary", "corp.example", "8443", "hunter2", "https://",
                    "10.20.30.40", "10.1.2.3", "connection refused", "timed out",
                    "incident_id", "author", "monitor_id", f'"id":{secret}'):
        assert private not in answer.text, private


async def test_the_history_reads_days_from_rollups_hours_and_raw_results(
        client: httpx.AsyncClient, owner: Person, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    shop, quiet = (await add_monitor(client, owner, "shop"),
                   await add_monitor(client, owner, "quiet"))
    await run_sql(database_url, *history(shop))
    monkeypatch.setattr("dozor.api.status_public.datetime", FrozenClock)
    await publish(client, owner, shop, quiet)
    body = (await client.get(f"{PUBLIC}/acme")).json()
    assert body["history"] == {"days": 90, "from": "2026-03-13", "to": "2026-06-10"}
    shown, silent = body["groups"][0]["monitors"]
    days = shown["daily_uptime"]
    assert len(days) == 90
    assert days[0] == 0.5  # the window's first day; the day before it is left out
    assert days[-4:] == [0.75, 0.99, 1.0, 0.7459]  # two locations; daily; daily; today
    assert days[1:-4] == [None] * 85
    assert shown["uptime"] == round_down((50 + 150 + 990 + 1440 + 91)
                                         / (100 + 200 + 1000 + 1440 + 122))
    assert silent["daily_uptime"] == [None] * 90 and silent["uptime"] is None


class FrozenClock(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> FrozenClock:
        return cls.fromtimestamp(NOW.timestamp(), tz)


def round_down(value: float) -> float:
    return int(value * 100_000) / 100_000


def history(monitor_id: int) -> list[Any]:
    """Rollups and results of one monitor around NOW, with traps: a day before the
    window, an hour of yesterday (the daily row has it), a raw result already rolled up."""
    def rolled(when: int, checks: int, up: int, location: int = 1) -> dict[str, Any]:
        r = Rollup()
        for i in range(checks):
            r.add(i < up, 100.0)
        return rollup_row((monitor_id, location, when), r)

    daily = [rolled(TODAY - 90 * DAY, 100, 0), rolled(TODAY - 89 * DAY, 100, 50),
             rolled(TODAY - 3 * DAY, 100, 100), rolled(TODAY - 3 * DAY, 100, 50, 2),
             rolled(TODAY - 2 * DAY, 1000, 990), rolled(TODAY - DAY, 1440, 1440)]
    hourly = [rolled(TODAY - DAY + 5 * HOUR, 60, 0), rolled(TODAY, 60, 60),
              rolled(TODAY + 11 * HOUR, 60, 30)]
    mark = TODAY + 12 * HOUR
    raw = [(mark - 1800, 0), (mark + 300, 1), (mark + 600, 0), (mark + 900, 2)]
    return [insert(t.rollups_daily).values(daily), insert(t.rollups_hourly).values(hourly),
            insert(t.meta).values(key=ROLLED_UP, value=mark),
            insert(t.results).values([{"monitor_id": monitor_id, "at": at * 1000,
                                       "location_id": 1, "status": status}
                                      for at, status in raw])]


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine runs while the test does."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    yield seen
    event.remove(Engine, "before_cursor_execute", count)


async def test_a_page_costs_the_same_statements_with_one_monitor_or_thirty(
        client: httpx.AsyncClient, owner: Person, database_url: str,
        statements: list[str]) -> None:
    monitors = [await add_monitor(client, owner, f"m{i}") for i in range(30)]
    await run_sql(database_url, insert(t.rollups_daily).values([
        rollup_row((m, 1, TODAY - d * DAY), Rollup(checks=10, up=9))
        for m in monitors for d in range(1, 4)]))
    await publish(client, owner, monitors[0], slug="one")
    await publish(client, owner, *monitors, slug="thirty")
    await client.get(f"{PUBLIC}/one")  # the pool's first connection may say more
    counts = []
    for slug in ("one", "thirty"):
        statements.clear()
        answer = await client.get(f"{PUBLIC}/{slug}")
        assert answer.status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 8, statements


async def test_the_answer_is_cacheable_and_changes_with_the_page(
        client: httpx.AsyncClient, owner: Person) -> None:
    url = await publish(client, owner)
    first = await client.get(f"{PUBLIC}/acme")
    tag = first.headers["etag"]
    assert "max-age=5" in first.headers["cache-control"]
    again = await client.get(f"{PUBLIC}/acme", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    await client.post(f"{url}/notes", json={"status": "info", "text": "News"},
                      headers=owner.headers)
    changed = await client.get(f"{PUBLIC}/acme", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert [n["text"] for n in changed.json()["notes"]] == ["News"]


async def test_notes_of_the_last_thirty_days_are_shown_newest_first(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    url = await publish(client, owner)
    page_id = int(url.rsplit("/", 1)[1])
    shop = await add_monitor(client, owner, "shop")
    first, second = (await incident(database_url, owner.org_id, shop),
                     await incident(database_url, owner.org_id, shop))
    now = datetime.now(UTC)
    await run_sql(database_url, insert(st.status_notes).values([
        {"page_id": page_id, "status": status, "body": text, "incident_id": incident_id,
         "version": 1, "created_at": now - age}
        for status, text, incident_id, age in (
            ("resolved", "Too old", None, timedelta(days=31)),
            ("investigating", "A looks down", first, timedelta(days=3)),
            ("investigating", "B looks down", second, timedelta(days=2)),
            ("resolved", "A is back", first, timedelta(days=1)),
            ("info", "Plain news", None, timedelta(hours=1)))]))
    notes = (await client.get(f"{PUBLIC}/acme")).json()["notes"]
    assert [(n["text"], n["status"], n["thread"]) for n in notes] == [
        ("Plain news", "info", None), ("A is back", "resolved", 1),
        ("B looks down", "investigating", 2), ("A looks down", "investigating", 1)]
