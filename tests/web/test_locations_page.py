"""Locations on the dashboard: the monitor page's table of each location's status, last
check, latency and uptime with the combined row, shown only where there are several
locations; the overview's regional badge and filter; in English and Polish."""

from __future__ import annotations

import re

import httpx

from tests.api.conftest import Person
from tests.api.locations_seed import MONITOR, monitor, seeded_monitor
from tests.web.conftest import Browser


def regional_notes(page: str) -> list[tuple[bool, str]]:
    """Each regional badge or note (``data-regional``): whether it is hidden, its text."""
    found = re.findall(r'<(span|p) class="regional" data-regional( hidden)?[^>]*>'
                       r"([^<]*)<span data-where>([^<]*)</span></\1>", page)
    return [(bool(hidden), text + where) for _, hidden, text, where in found]


def cells(page: str) -> dict[str, list[str]]:
    """The locations table: each row's cells as text, by its data-location ("" for the
    combined row)."""
    rows = re.findall(r'<tr data-location="([^"]*)">(.*?)</tr>', page, re.S)
    return {name: [re.sub(r"<[^>]+>", "", cell).strip()
                   for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for name, row in rows}


async def test_the_monitor_page_shows_each_location_and_all_of_them(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str) -> None:
    monitor_id = await seeded_monitor(client, owner, database_url)
    page = (await owner_browser.get(f"/monitors/{monitor_id}")).text
    table = cells(page)
    assert list(table) == ["fra", "local", "nyc", "waw", "ams", ""]
    # name, status, last check, latency, 24h, 7d, 30d
    assert table["fra"][1] == "down" and table["fra"][3] == "-"
    assert table["fra"][4:] == ["64.286%", "86.842%", "86.842%"]  # 9/14, 99/114
    assert table["waw"][1] == "up" and table["waw"][3] == "40 ms"
    assert table["waw"][4:] == ["100.000%", "100.000%", "100.000%"]
    assert table["local"][1] == "stale" and table["local"][2] == "10m"
    assert table["nyc"][1:] == ["unknown", "-", "-", "-", "-", "-"]
    assert table["ams"][0] == "ams (no longer assigned)" and table["ams"][4] == "0.000%"
    assert table[""][0] == "All locations"
    assert table[""][4:] == ["70.588%", "91.453%", "91.453%"]  # 24/34, 214/234
    assert 'class="state s-stale"' in page
    assert regional_notes(page) == [(False, "Regional problem: seen down from fra")]
    # Where a failure was seen from.
    assert re.search(r"UTC</td><td>fra</td><td>connection_refused</td>", page)


async def test_one_location_needs_no_table(client: httpx.AsyncClient, owner: Person,
                                           owner_browser: Browser) -> None:
    body = {key: value for key, value in MONITOR.items() if key != "locations"}
    monitor_id = await monitor(client, owner, body)
    page = (await owner_browser.get(f"/monitors/{monitor_id}")).text
    assert page.count("<h2>") > 3 and "Locations" not in page and cells(page) == {}
    assert regional_notes(page) == []  # no locations: no regional problem to show


async def test_the_overview_marks_and_filters_a_regional_problem(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str) -> None:
    monitor_id = await seeded_monitor(client, owner, database_url)
    await monitor(client, owner, {"name": "db", "kind": "tcp", "host": "127.0.0.1",
                                  "port": 5432})
    await monitor(client, owner, MONITOR | {"name": "web"})  # with locations, none down
    page = (await owner_browser.get("/")).text
    # The one seen down, and a hidden badge for the other with locations (the live
    # stream fills it); db, without locations, has none.
    assert regional_notes(page) == [(False, "regional: fra"), (True, "regional: ")]
    assert '<a class="pill s-regional" href="?state=regional">regional 1</a>' in page
    filtered = (await owner_browser.get("/?state=regional")).text
    assert f'id="m{monitor_id}"' in filtered and ">db<" not in filtered
    assert '<option value="regional" selected>' in filtered
    await owner_browser.post("/language", {"language": "pl", "next": "/"})
    polish = (await owner_browser.get("/")).text
    assert regional_notes(polish)[0] == (False, "regionalny: fra")
    assert "Wszystkie lokalizacje" in (await owner_browser.get(f"/monitors/{monitor_id}")).text


async def test_the_regional_problem_is_not_part_of_the_yaml_to_edit(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str) -> None:
    monitor_id = await seeded_monitor(client, owner, database_url)
    page = (await owner_browser.get(f"/monitors/{monitor_id}/edit")).text
    assert "regional" not in page and "locations:" in page
    text = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S)
    version = re.search(r'name="version" value="(\d+)"', page)
    assert text and version
    saved = await owner_browser.post(f"/monitors/{monitor_id}/edit", {
        "config": text.group(1).replace("port: 9", "port: 10"), "version": version.group(1)})
    assert saved.status_code == 303, saved.text
