"""A monitor checked from three locations in a real browser, the whole way through: the
server checks a local site from its own location, probes at fra and waw deliver results
over /probe/v1, and one location seeing it down is a regional problem: a badge on the
overview, and the monitor page's locations table shows each location's view. The badge
and the monitor page's note come and go with the probes' results while the page is open."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from playwright.async_api import ConsoleMessage, Page, expect
from sqlalchemy import select

from dozor.config.specs import parse_monitor
from dozor.store import monitors as store
from dozor.store import tables as t
from tests.api.seed import database
from tests.browser.conftest import sign_up_in_browser
from tests.engine.conftest import eventually
from tests.probe.server_helpers import add_probe, bearer, result
from tests.servers.http import LocalHttpServer


class Probes:
    """The fra and waw probes: fra sees the site down, waw sees it up."""

    def __init__(self, server: str, database_url: str, monitor_id: int) -> None:
        self.server, self.url, self.monitor_id = server, database_url, monitor_id
        self.tokens: dict[str, str] = {}

    async def register(self) -> None:
        for location in ("fra", "waw"):
            self.tokens[location] = await add_probe(self.url, f"{location}-1", location)

    async def report(self, fra: bool = False) -> None:
        """One result from each (fra's ``fra``, waw's up): the quorum forgets a location
        not heard for 30 s."""
        for location, ok in (("fra", fra), ("waw", True)):
            await self.send(location, ok)

    async def send(self, location: str, ok: bool) -> None:
        at = int(datetime.now(UTC).timestamp() * 1000)
        async with httpx.AsyncClient(base_url=self.server) as http:
            sent = await http.post("/probe/v1/results", headers=bearer(self.tokens[location]),
                                   json={"results": [result(self.monitor_id, at, ok=ok)],
                                         "dropped": 0})
            assert sent.status_code == 200, sent.text

    async def state(self) -> Any:
        async with database(self.url) as connection:
            return (await connection.execute(select(t.monitor_state).where(
                t.monitor_state.c.monitor_id == self.monitor_id))).one()

    async def checked_from(self, location: str) -> bool:
        """Whether a result from ``location`` is stored (a probe's results also show as
        the monitor's last check, so ``last_checked_at`` does not tell)."""
        async with database(self.url) as connection:
            r = t.results.c
            return await connection.scalar(
                select(r.at).join(t.locations, t.locations.c.id == r.location_id)
                .where(r.monitor_id == self.monitor_id, t.locations.c.name == location)
                .limit(1)) is not None


async def monitor(database_url: str, url: str,
                  locations: tuple[str, ...] = ("fra", "local", "waw")) -> int:
    async with database(database_url) as connection:
        org_id = await connection.scalar(select(t.organizations.c.id))
        return await store.create_monitor(connection, parse_monitor({
            "name": "shop", "kind": "http", "url": url, "interval": "1s",
            "confirm-after": 1, "locations": list(locations)}), org_id)


async def test_a_regional_problem_is_a_badge_and_the_page_shows_each_location(
        page: Page, server: str, database_url: str) -> None:
    refused: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)
    page.on("console", note)
    async with LocalHttpServer() as site:
        site.serve("/health", body="ok")
        await sign_up_in_browser(page, server)
        probes = Probes(server, database_url, await monitor(database_url, site.url("/health")))
        await probes.register()

        async def regional_at_fra_and_checked_here() -> bool:
            await probes.report()
            state = await probes.state()
            return bool(state.regional == ["fra"] and await probes.checked_from("local"))
        # The engine picks the monitor up within a second (its reload interval).
        await eventually(regional_at_fra_and_checked_here, within=20)

        await page.goto(server)
        row = page.locator("tr", has_text="shop")
        await expect(row.locator("[data-state]")).to_have_text("up")
        await expect(row.locator("[data-regional]")).to_have_text("regional: fra")
        await page.get_by_role("link", name="regional 1").click()
        await expect(page.locator("tbody tr")).to_have_count(1)

        await probes.report()
        await row.get_by_role("link", name="shop").click()
        await expect(page.get_by_role("heading", name="Locations")).to_be_visible()
        await expect(page.get_by_text("Regional problem: seen down from fra")).to_be_visible()
        for location, view in (("fra", "down"), ("local", "up"), ("waw", "up")):
            cell = page.locator(f'tr[data-location="{location}"] .state')
            await expect(cell).to_have_text(view)
        combined = page.locator('tr[data-location=""]')
        await expect(combined).to_contain_text("All locations")
        await expect(combined.locator(".state")).to_have_text("up")
    assert refused == []


async def test_the_regional_badge_comes_and_goes_without_a_reload(
        page: Page, server: str, database_url: str) -> None:
    await sign_up_in_browser(page, server)
    # Checked by the fra and waw probes only: fra alone down is a regional problem.
    probes = Probes(server, database_url,
                    await monitor(database_url, "http://127.0.0.1:9/", ("fra", "waw")))
    await probes.register()

    async def up() -> bool:  # once the engine holds the monitor (a reload, within 1 s)
        await probes.report(fra=True)
        return bool((await probes.state()).state == "up")
    await eventually(up, within=20)

    await page.goto(server)
    badge = page.locator("tr", has_text="shop").locator("[data-regional]")
    await expect(badge).to_be_hidden()
    await page.evaluate("window.notReloaded = true")
    await probes.send("fra", ok=False)
    await expect(badge).to_have_text("regional: fra")
    await expect(badge).to_be_visible()
    await probes.send("fra", ok=True)
    await expect(badge).to_be_hidden()
    assert await page.evaluate("window.notReloaded") is True

    await page.get_by_role("link", name="shop").click()
    note = page.locator("[data-regional]")
    await expect(note).to_be_hidden()
    await page.evaluate("window.notReloaded = true")
    await probes.send("fra", ok=False)
    await expect(note).to_have_text("Regional problem: seen down from fra")
    await probes.send("fra", ok=True)
    await expect(note).to_be_hidden()
    assert await page.evaluate("window.notReloaded") is True
