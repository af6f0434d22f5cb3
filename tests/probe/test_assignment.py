"""Which location checks a monitor: ``locations`` in YAML and over the API, and a server
that leaves monitors assigned only elsewhere to the probes there."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.config.yamlfile import ConfigFileError, dump, load_text
from dozor.engine.engine import Engine
from dozor.store import tables as t
from tests.api.conftest import Person
from tests.engine.conftest import add_monitor, eventually
from tests.fakes import ScriptedCheck

YAML = """monitors:
  - name: shop
    kind: tcp
    host: shop.example.com
    port: 443
    locations: [waw, fra]
"""


def test_locations_read_back_from_yaml_as_written() -> None:
    document = load_text(YAML)
    assert document.monitors[0].row_values()["locations"] == ["fra", "waw"]
    again = load_text(dump(document.monitors, []))
    assert [m.row_values() for m in again.monitors] == [m.row_values() for m in document.monitors]
    local = load_text(YAML.replace("    locations: [waw, fra]\n", "")).monitors
    assert local[0].row_values()["locations"] is None and "locations" not in dump(local, [])


@pytest.mark.parametrize(("locations", "expected"), [
    ("[Fra]", "f.yaml:6: monitors[0].locations[0]: String should match pattern"),
    ("[fra, fra]", "f.yaml:6: monitors[0].locations: name each location once"),
    ("[]", "monitors[0].locations: List should have at least 1 item"),
])
def test_a_bad_location_is_named_with_its_line(locations: str, expected: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_text(YAML.replace("[waw, fra]", locations), "f.yaml")
    assert expected in str(caught.value)


async def test_locations_round_trip_over_the_api(client: httpx.AsyncClient,
                                                 owner: Person) -> None:
    body = {"name": "shop", "kind": "tcp", "host": "shop.example.com", "port": 443,
            "locations": ["waw", "fra"]}
    created = await client.post("/api/v1/monitors", json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    assert created.json()["locations"] == ["fra", "waw"]
    monitor = f"/api/v1/monitors/{created.json()['id']}"
    read = await client.get(monitor, headers=owner.headers)
    assert read.json()["locations"] == ["fra", "waw"]
    local = await client.patch(monitor, json={"locations": None}, headers=owner.headers | {
        "If-Match": read.headers["etag"]})
    assert local.status_code == 200 and "locations" not in local.json()
    for bad, field in ((["ok", "Not ok"], "locations.1"), (["a"] * 17, "locations"),
                       ("fra", "locations")):
        refused = await client.post("/api/v1/monitors", headers=owner.headers,
                                    json=body | {"name": "other", "locations": bad})
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]
    beat = await client.post("/api/v1/monitors", headers=owner.headers, json={
        "name": "cron", "kind": "heartbeat", "period": "1h", "locations": ["fra"]})
    assert beat.status_code == 422 and beat.json()["errors"][0]["field"] == "locations"
    yaml = owner.headers | {"Content-Type": "application/yaml"}
    applied = await client.post("/api/v1/monitors/apply", content=YAML.replace(
        "shop.example.com", "x.example.com"), headers=yaml)
    assert applied.json()["changes"] == ["~ update monitor shop (config, locations)"]
    again = await client.post("/api/v1/monitors/apply", headers=yaml, content=YAML.replace(
        "shop.example.com", "x.example.com").replace("[waw, fra]", "[fra, waw]"))
    assert again.json()["unchanged"] == 1, again.text


async def test_a_server_checks_only_monitors_of_its_own_location(
        running: Engine, engine: AsyncEngine) -> None:
    here = await add_monitor(engine, name="here", locations=["local", "fra"])
    default = await add_monitor(engine, name="default")
    away = await add_monitor(engine, name="away", locations=["fra"])
    await running.reload()
    await eventually(lambda: _ran("here", "default"))
    # Held, never checked here: its state comes from fra's results.
    assert set(running.monitors) == {here, default, away} and away not in running.scheduler
    assert "away" not in ScriptedCheck.runs
    async with engine.begin() as connection:  # moved away: no longer checked here
        await connection.execute(update(t.monitors).where(t.monitors.c.id == here)
                                 .values(locations=["waw"], revision=10_000))
        await connection.execute(update(t.meta).where(t.meta.c.key == "config_revision")
                                 .values(value=10_000))
    await eventually(lambda: _unscheduled(running, here))
    assert here in running.monitors and default in running.scheduler


async def _ran(*names: str) -> bool:
    return all(ScriptedCheck.runs.get(name, 0) > 0 for name in names)


async def _unscheduled(running: Engine, monitor_id: int) -> bool:
    return monitor_id not in running.scheduler
