"""Locations on the dashboard: the monitor page's table of each location's status, last
check, latency and uptime with the combined row, shown only where there are several
locations, and its latency chart's line per location; the overview's regional badge and
filter; in English and Polish."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
from sqlalchemy import insert

from dozor.store import tables as t
from tests.api.conftest import Person
from tests.api.locations_seed import MONITOR, location, monitor, seeded_monitor
from tests.api.seed import database
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
                                           owner_browser: Browser, database_url: str) -> None:
    body = {key: value for key, value in MONITOR.items() if key != "locations"}
    monitor_id = await monitor(client, owner, body)
    now = datetime.now(UTC)
    async with database(database_url) as connection:
        await connection.execute(insert(t.results).values(
            monitor_id=monitor_id, location_id=await location(connection, "local", now),
            at=int(now.timestamp() * 1000) - 1000, status=1, latency_ms=50))
    page = (await owner_browser.get(f"/monitors/{monitor_id}")).text
    assert page.count("<h2>") > 3 and "Locations" not in page and cells(page) == {}
    assert regional_notes(page) == []  # no locations: no regional problem to show
    # Its chart stacks each check's phases, as before locations existed.
    assert 'class="p-rest"' in page and lines(page) == {} and "first byte" in page


def lines(page: str) -> dict[str, tuple[int, str]]:
    """The latency chart's lines: by location, its colour and what it draws."""
    chart = re.search(r'<svg class="chart".*?</svg>', page, re.S)
    assert chart is not None
    return {name: (int(colour), drawn) for colour, name, drawn in re.findall(
        r'<g class="series l(\d)" data-location="([^"]+)"><title>\2</title>(.*?)</g>',
        chart.group())}


async def test_the_latency_chart_draws_each_location_s_own_line(
        client: httpx.AsyncClient, owner: Person, owner_browser: Browser,
        database_url: str) -> None:
    monitor_id = await seeded_monitor(client, owner, database_url)
    page = (await owner_browser.get(f"/monitors/{monitor_id}?range=1h")).text
    drawn = lines(page)
    # Colours follow the table's order (fra, local, nyc, waw, ams): nyc never checked,
    # ams not in the last hour.
    assert {name: colour for name, (colour, _) in drawn.items()} == {
        "fra": 0, "local": 1, "waw": 3}
    runs = {name: re.findall(r"[ML][\d.]+ ([\d.]+)", d) for name, (_, d) in drawn.items()}
    assert [len(runs[name]) for name in ("fra", "local", "waw")] == [1, 2, 3]
    assert drawn["fra"][1].count('class="fail"') == 3  # its three failures, in its group
    assert "fail" not in drawn["waw"][1] + drawn["local"][1]
    # fra's 200 ms is the top of the scale, above waw's 40 and local's 30.
    assert '200 ms</text>' in page
    assert float(runs["fra"][0]) < float(runs["waw"][0]) < float(runs["local"][0])
    assert ('<p class="legend"><span class="k l0"></span>fra <span class="k l1"></span>local '
            '<span class="k l3"></span>waw <span class="k fail"></span>failed</p>') in page
    assert "p-dns" not in page  # no phases: they would mix the locations

    week = (await owner_browser.get(f"/monitors/{monitor_id}?range=7d")).text
    hourly = lines(week)  # hourly means, per location; ams's checks were all down
    assert sorted(hourly) == ["fra", "local", "waw"]
    assert len(re.findall("[ML]", hourly["fra"][1])) >= 2  # two hours ago, and this hour


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
