"""A monitor's figures per location and combined (``GET /monitors/{id}/locations``), and
its regional problem in the monitor list and detail, on both databases. The data are in
``locations_seed``: results and rollups from four locations, as the engine, the probes
and the rollup job write them."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from tests.api.conftest import Person
from tests.api.locations_seed import MONITOR, SEED, rollup
from tests.api.locations_seed import seeded_monitor as shop


async def test_each_location_has_its_view_last_check_and_figures(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    monitor_id = await shop(client, owner, database_url)
    answer = await client.get(f"/api/v1/monitors/{monitor_id}/locations",
                              headers=owner.headers)
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    places = {place["name"]: place for place in shown["locations"]}
    # The monitor's locations in their order, then one that checked it before.
    assert list(places) == ["fra", "local", "nyc", "waw", "ams"]
    assert [p["assigned"] for p in places.values()] == [True, True, True, True, False]
    assert {name: p["view"] for name, p in places.items()} == {
        "fra": "down", "local": "stale", "nyc": "unknown", "waw": "up", "ams": "stale"}
    assert shown["regional"] == ["fra"] and shown["state"] == "unknown"

    fra, waw = places["fra"], places["waw"]
    assert (fra["last_status"], fra["last_error"], fra["last_latency_ms"]) == (
        "down", "connection_refused", None)
    assert (waw["last_status"], waw["last_latency_ms"]) == ("up", 40)
    assert places["nyc"]["last_checked_at"] is None and places["ams"]["last_status"] is None
    assert datetime.fromisoformat(places["local"]["last_checked_at"]) < datetime.fromisoformat(
        waw["last_checked_at"]) < datetime.fromisoformat(fra["last_checked_at"])

    day = {name: (p["uptime"]["24h"]["checks"], p["uptime"]["24h"]["up"])
           for name, p in places.items()}
    assert day == {"fra": (14, 9), "local": (2, 2), "nyc": (0, 0), "waw": (13, 13),
                   "ams": (5, 0)}
    for window in ("7d", "30d"):
        assert {name: (p["uptime"][window]["checks"], p["uptime"][window]["up"])
                for name, p in places.items()} == {
            "fra": (114, 99), "local": (2, 2), "nyc": (0, 0), "waw": (113, 113),
            "ams": (5, 0)}
    assert fra["uptime"]["24h"]["uptime"] == pytest.approx(9 / 14)
    assert fra["uptime"]["24h"]["latency_ms"]["avg"] == pytest.approx((10 * 100 + 200) / 11)
    assert waw["uptime"]["24h"]["latency_ms"]["avg"] == pytest.approx((10 * 50 + 3 * 40) / 13)
    assert places["ams"]["uptime"]["24h"]["uptime"] == 0.0
    assert places["ams"]["uptime"]["24h"]["latency_ms"]["avg"] is None

    combined = shown["combined"]
    assert (combined["uptime"]["24h"]["checks"], combined["uptime"]["24h"]["up"]) == (34, 24)
    assert combined["uptime"]["24h"]["uptime"] == pytest.approx(24 / 34)
    assert (combined["uptime"]["7d"]["checks"], combined["uptime"]["7d"]["up"]) == (234, 214)
    # Latency over every timed check of every location, not a mean of the locations' means.
    assert combined["uptime"]["24h"]["latency_ms"]["avg"] == pytest.approx(
        (1200 + 60 + 620) / 26)
    assert (combined["last_checked_at"], combined["last_status"]) == (
        fra["last_checked_at"], "down")
    assert combined["uptime"] == (await client.get(
        f"/api/v1/monitors/{monitor_id}/uptime", headers=owner.headers)).json()


async def test_p95_is_each_locations_own_and_the_combined_one_over_all_checks(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    monitor_id = await shop(client, owner, database_url)
    shown = (await client.get(f"/api/v1/monitors/{monitor_id}/locations",
                              headers=owner.headers)).json()
    places = {place["name"]: place for place in shown["locations"]}
    fra = rollup(SEED["fra"][0] + [(up, latency) for _, up, latency in SEED["fra"][2]])
    waw = rollup(SEED["waw"][0] + [(up, latency) for _, up, latency in SEED["waw"][2]])
    local = rollup([(up, latency) for _, up, latency in SEED["local"][2]])
    everything = rollup([])
    for part in (fra, waw, local):
        everything.merge(part)
    assert places["fra"]["uptime"]["24h"]["latency_ms"]["p95"] == fra.histogram.quantile(0.95)
    assert places["waw"]["uptime"]["24h"]["latency_ms"]["p95"] == waw.histogram.quantile(0.95)
    assert shown["combined"]["uptime"]["24h"]["latency_ms"]["p95"] == \
        everything.histogram.quantile(0.95)
    # Percentiles are within about 4.5% (core.rollups): fra's is its one slow check, the
    # combined one is the 25th of all 26 timed checks.
    assert places["fra"]["uptime"]["24h"]["latency_ms"]["p95"] == pytest.approx(200, rel=0.05)
    assert places["waw"]["uptime"]["24h"]["latency_ms"]["p95"] == pytest.approx(50, rel=0.05)
    assert shown["combined"]["uptime"]["24h"]["latency_ms"]["p95"] == pytest.approx(
        100, rel=0.05)


async def test_a_monitor_checked_here_alone_has_the_same_figures_either_way(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    body = {key: value for key, value in MONITOR.items() if key != "locations"}
    monitor_id = await shop(client, owner, database_url, body)
    shown = (await client.get(f"/api/v1/monitors/{monitor_id}/locations",
                              headers=owner.headers)).json()
    # Without locations, the server's own (DOZOR_LOCATION, "local" here) is the assigned
    # one; the seed's other locations show as those that checked it before.
    assert [(p["name"], p["assigned"]) for p in shown["locations"]] == [
        ("local", True), ("ams", False), ("fra", False), ("waw", False)]
    uptime = (await client.get(f"/api/v1/monitors/{monitor_id}/uptime",
                               headers=owner.headers)).json()
    assert shown["combined"]["uptime"] == uptime
    assert uptime["24h"]["checks"] == 34


async def test_the_regional_problem_shows_in_the_list_and_the_detail(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    monitor_id = await shop(client, owner, database_url)
    other = await client.post("/api/v1/monitors", headers=owner.headers, json={
        "name": "db", "kind": "tcp", "host": "127.0.0.1", "port": 5432})
    detail = await client.get(f"/api/v1/monitors/{monitor_id}", headers=owner.headers)
    assert detail.json()["regional"] == ["fra"]
    listed = (await client.get("/api/v1/monitors", headers=owner.headers)).json()["items"]
    assert {m["name"]: m["regional"] for m in listed} == {"shop": ["fra"], "db": None}
    regional = (await client.get("/api/v1/monitors?regional=true",
                                 headers=owner.headers)).json()["items"]
    assert [m["id"] for m in regional] == [monitor_id]
    rest = (await client.get("/api/v1/monitors?regional=false",
                             headers=owner.headers)).json()["items"]
    assert [m["id"] for m in rest] == [other.json()["id"]]
    bad = await client.get("/api/v1/monitors?regional=maybe", headers=owner.headers)
    assert bad.status_code == 422 and "regional" in bad.text


async def test_another_organisations_monitor_has_no_locations_to_show(
        client: httpx.AsyncClient, owner: Person, stranger: Person,
        database_url: str) -> None:
    monitor_id = await shop(client, owner, database_url)
    answer = await client.get(f"/api/v1/monitors/{monitor_id}/locations",
                              headers=stranger.headers)
    assert answer.status_code == 404 and "fra" not in answer.text
