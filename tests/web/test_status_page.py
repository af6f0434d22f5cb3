"""The public status page in HTML: only published pages, at their slug or at their custom
domain's root; public names, states, bars and notes, never a monitor's target or error."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from dozor.store import tables as t
from tests.api.conftest import Person, app, client, fresh_limits_and_cheap_hashes, owner
from tests.api.test_status_pages import PAGES, add_monitor, incident, page_body
from tests.api.test_status_public import PUBLIC, publish, run_sql, statements

__all__ = ["app", "client", "fresh_limits_and_cheap_hashes", "owner", "statements"]


async def test_an_unpublished_page_is_not_found(client: httpx.AsyncClient,
                                                owner: Person) -> None:
    created = await client.post(PAGES, headers=owner.headers, json=page_body(
        custom_domain="status.acme.example"))
    for answer in (await client.get("/status/acme"), await client.get("/status/nothing"),
                   await client.get("/status/ACME"),
                   await client.get("/", headers={"Host": "status.acme.example"})):
        assert answer.status_code in (303, 404)
        assert "Acme" not in answer.text
    assert (await client.get("/status/acme")).status_code == 404
    await client.patch(created.headers["location"], json={"published": True},
                       headers=owner.headers | {"If-Match": "*"})
    shown = await client.get("/status/acme")
    assert shown.status_code == 200 and "<h1>Acme</h1>" in shown.text
    assert shown.headers["content-type"].startswith("text/html")


async def test_a_custom_domain_shows_its_page_at_the_root(client: httpx.AsyncClient,
                                                          owner: Person) -> None:
    await publish(client, owner, custom_domain="status.acme.example")
    for host in ("status.acme.example", "STATUS.acme.example:443"):
        shown = await client.get("/", headers={"Host": host})
        assert shown.status_code == 200, host
        assert "<h1>Acme</h1>" in shown.text
    # The dashboard's own host, and hosts no page claims, keep the dashboard's root.
    for host in ("dozor.test", "other.example", "127.0.0.1:8000"):
        answer = await client.get("/", headers={"Host": host})
        assert answer.status_code == 303 and answer.headers["location"].startswith(
            "/login"), host


async def test_visitors_read_public_names_states_and_notes_never_targets_or_errors(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    created = await client.post("/api/v1/monitors", headers=owner.headers, json={
        "name": "db-primary backend", "kind": "http",
        "url": "https://db-primary.corp.example:8443/health?key=hunter2"})
    secret = created.json()["id"]
    shop = await add_monitor(client, owner, "Shop")
    incident_id = await incident(database_url, owner.org_id, secret)
    s = t.monitor_state.c
    await run_sql(database_url, *[
        update(t.monitor_state).where(s.monitor_id == m).values(state=state, last_message=msg)
        for m, state, msg in ((secret, "down", "connection refused by 10.20.30.40"),
                              (shop, "pending", "timed out after 10 s"))])
    url = await publish(client, owner, secret, shop)
    await client.patch(url, headers=owner.headers | {"If-Match": "*"}, json={
        "groups": [{"name": "Core", "monitors": [
            {"monitor_id": secret, "display_name": "Database"}, {"monitor_id": shop}]}]})
    for text in ("The database is down.", "A new disk is in; watching it."):
        await client.post(f"{url}/notes", headers=owner.headers, json={
            "status": "investigating", "text": text, "incident_id": incident_id})
    page = (await client.get("/status/acme")).text
    assert "Partial outage" in page and "Database" in page and "Shop" in page
    assert page.count('<svg class="bar"') == 2 and "Outage" in page
    assert page.index("A new disk is in") < page.index("The database is down.")  # newest first
    for private in ("db-primary", "corp.example", "8443", "hunter2", "https://",
                    "10.20.30.40", "10.1.2.3", "connection refused", "timed out"):
        assert private not in page, private


async def test_the_page_speaks_polish_and_needs_no_script(client: httpx.AsyncClient,
                                                          owner: Person) -> None:
    await publish(client, owner)
    page = await client.get("/status/acme", headers={"Accept-Language": "pl,en;q=0.5"})
    assert 'lang="pl"' in page.text and "Komunikaty e-mailem" in page.text
    assert '<form method="post" action="/status/acme">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "public, max-age=5"  # crowds in an outage
    assert page.headers["vary"] == "Accept-Language, Cookie"


async def test_the_html_page_costs_the_statements_of_the_public_read(
        client: httpx.AsyncClient, owner: Person, statements: list[str]) -> None:
    monitors = [await add_monitor(client, owner, f"m{i}") for i in range(30)]
    await publish(client, owner, monitors[0], slug="one")
    await publish(client, owner, *monitors, slug="thirty", custom_domain="status.acme.example")
    await client.get("/status/one")  # the pool's first connection may say more
    counts = []
    for url, host in (("/status/one", "dozor.test"), ("/status/thirty", "dozor.test"),
                      ("/", "status.acme.example"), (f"{PUBLIC}/thirty", "dozor.test")):
        statements.clear()
        answer = await client.get(url, headers={"Host": host})
        assert answer.status_code == 200, url
        counts.append(len(statements))
    assert len(set(counts)) == 1, counts
