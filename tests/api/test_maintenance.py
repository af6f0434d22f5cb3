"""Maintenance windows over the API: the YAML form's validation, targets by id, name or
tag, versions, and a running server that applies a change without a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dozor.config.specs import maintenance_from_row, maintenance_to_mapping
from dozor.config.yamlfile import dump
from dozor.engine.engine import Engine
from dozor.settings import Settings
from dozor.store import monitors as store
from dozor.store.db import create_engine
from tests.api import seed
from tests.api.conftest import Person
from tests.engine.conftest import eventually
from tests.fakes import ScriptedCheck

NIGHTLY = {"name": "nightly", "cron": "0 3 * * *", "duration": "30m",
           "timezone": "Europe/Warsaw", "tags": ["web"]}
URL = "/api/v1/maintenance"
SHOP = {"name": "shop", "kind": "tcp", "host": "127.0.0.1", "port": 9, "interval": "5m"}


async def monitor(client: httpx.AsyncClient, person: Person, name: str,
                  **fields: Any) -> dict[str, Any]:
    created = await client.post("/api/v1/monitors", headers=person.headers,
                                json=SHOP | {"name": name} | fields)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def test_a_window_is_created_read_and_listed(client: httpx.AsyncClient,
                                                   owner: Person) -> None:
    created = await client.post(URL, json=NIGHTLY, headers=owner.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in NIGHTLY} == NIGHTLY
    assert body["managed_by"] is None and body["open_now"] in (True, False)
    assert created.headers["etag"] == f'"{body["version"]}"'
    assert (await client.get(created.headers["location"], headers=owner.headers)).json() == body
    listed = (await client.get(URL, headers=owner.headers)).json()
    assert listed == {"items": [body], "next_cursor": None}


async def test_a_one_off_window_reads_in_its_own_time_zone(client: httpx.AsyncClient,
                                                           owner: Person) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    body = (await client.post(URL, headers=owner.headers, json={
        "name": "deploy", "start": (now - timedelta(minutes=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(), "timezone": "Asia/Tokyo",
        "all-monitors": True})).json()
    assert body["start"] == (now - timedelta(minutes=1)).astimezone(
        datetime.fromisoformat(body["start"]).tzinfo).isoformat()
    assert body["start"].endswith("+09:00") and body["open_now"] is True


async def test_monitors_are_targeted_by_id_name_or_tag(client: httpx.AsyncClient,
                                                       owner: Person, stranger: Person) -> None:
    shop = await monitor(client, owner, "shop")
    api = await monitor(client, owner, "api")
    body = (await client.post(URL, headers=owner.headers, json=NIGHTLY | {
        "monitors": ["shop"], "monitor-ids": [api["id"]]})).json()
    assert body["monitors"] == ["api", "shop"]
    assert body["monitor-ids"] == sorted([shop["id"], api["id"]])
    theirs = await monitor(client, stranger, "theirs")
    for extra, field in (({"monitor-ids": [theirs["id"]]}, "monitor-ids.0"),
                         ({"monitor-ids": [shop["id"], 999]}, "monitor-ids.1"),
                         ({"monitor-ids": "shop"}, "monitor-ids"),
                         ({"monitors": ["theirs"]}, "monitors.0")):
        answer = await client.post(URL, headers=owner.headers,
                                   json=NIGHTLY | {"name": "other"} | extra)
        assert answer.status_code == 422, extra
        assert [e["field"] for e in answer.json()["errors"]] == [field]


@pytest.mark.parametrize(("change", "field"), [
    ({"cron": "at three"}, "cron"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"duration": "soon"}, "duration"),
    ({"tags": []}, "monitors"),
    ({"cron": None, "duration": None, "start": "2026-01-02T00:00:00Z"}, "end"),
    ({"cron": None, "duration": None, "start": "2026-01-02T00:00:00Z",
      "end": "2026-01-01T00:00:00Z"}, "end"),
    ({"colour": "red"}, "colour"),
    ({"name": ""}, "name"),
    ({"name": "a\x00b"}, "name"),  # PostgreSQL refuses NUL in text
    ({"tags": ["web\nEVIL"]}, "tags.0"),
    ({"cron": "0 0 30 2 *"}, "cron"),  # valid, but no date matches it
    ({"duration": "400d"}, "duration"),
    ({"cron": None, "duration": None, "start": "0001-01-01T00:30:00",
      "end": "0001-01-01T01:00:00"}, "start"),  # before year 1 in UTC
])
async def test_a_bad_window_names_the_field_and_changes_nothing(
        client: httpx.AsyncClient, owner: Person, change: dict[str, Any], field: str) -> None:
    body = {k: v for k, v in (NIGHTLY | change).items() if v is not None}
    answer = await client.post(URL, json=body, headers=owner.headers)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in answer.json()["errors"]] == [field]
    assert (await client.get(URL, headers=owner.headers)).json()["items"] == []


async def test_two_editors_cannot_overwrite_each_other(client: httpx.AsyncClient,
                                                       owner: Person) -> None:
    created = await client.post(URL, json=NIGHTLY, headers=owner.headers)
    url, etag = created.headers["location"], created.headers["etag"]
    assert (await client.patch(url, json={"duration": "1h"},
                               headers=owner.headers)).status_code == 428
    first = await client.patch(url, json={"duration": "1h", "tags": None, "all-monitors": True},
                               headers=owner.headers | {"If-Match": etag})
    assert first.status_code == 200, first.text
    assert (first.json()["duration"], first.json()["all-monitors"]) == ("1h", True)
    assert "tags" not in first.json()
    stale = await client.put(url, json=NIGHTLY, headers=owner.headers | {"If-Match": etag})
    assert stale.status_code == 412
    assert (await client.get(url, headers=owner.headers)).json()["duration"] == "1h"


async def test_names_are_unique_and_a_window_can_be_deleted(client: httpx.AsyncClient,
                                                            owner: Person) -> None:
    url = (await client.post(URL, json=NIGHTLY, headers=owner.headers)).headers["location"]
    again = await client.post(URL, json=NIGHTLY, headers=owner.headers)
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "name"
    assert (await client.delete(url, headers=owner.headers)).status_code == 204
    assert (await client.get(url, headers=owner.headers)).status_code == 404
    actions = [e["action"] for e in (await client.get(
        "/api/v1/audit", headers=owner.headers)).json()["items"]]
    assert actions[:2] == ["maintenance_deleted", "maintenance_created"]


async def test_the_api_apply_and_export_show_a_window_alike(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    text = yaml.safe_dump({"monitors": [SHOP], "maintenance": [NIGHTLY | {"monitors": ["shop"]}]})
    applied = await client.post("/api/v1/monitors/apply", content=text, headers=owner.headers
                                | {"Content-Type": "application/yaml"})
    assert applied.status_code == 200, applied.text
    [window] = (await client.get(URL, headers=owner.headers)).json()["items"]
    assert window["managed_by"] == "yaml"
    async with seed.database(database_url) as db:
        rows = await store.list_maintenance(db, owner.org_id)
    exported = yaml.safe_load(dump([], [maintenance_from_row(r) for r in rows]))
    [mapping] = exported["maintenance"]
    assert mapping == NIGHTLY | {"monitors": ["shop"]}
    assert {k: window[k] for k in mapping} == mapping
    assert maintenance_to_mapping(maintenance_from_row(rows[0])) == mapping


@pytest.fixture
async def running(database_url: str, tmp_path: Path) -> AsyncIterator[Engine]:
    """A server's engine on the API's database, reloading its configuration often."""
    settings = Settings.model_validate({
        "data_dir": tmp_path / "engine", "database_url": database_url,
        "flush_interval": 0.05, "reload_interval": 0.1, "retention_interval": 3600})
    database = create_engine(database_url)
    engine = Engine(settings, database)
    await engine.start()
    yield engine
    await engine.stop()
    await database.dispose()


async def test_a_running_server_applies_window_changes_without_a_restart(
        client: httpx.AsyncClient, owner: Person, stranger: Person, running: Engine) -> None:
    ScriptedCheck.runs.clear()
    created = await client.post("/api/v1/monitors", headers=owner.headers, json={
        "name": "api", "kind": "scripted", "key": "maintenance-api", "interval": "1s"})
    api = created.json()
    url = created.headers["location"]

    async def state_is(state: str) -> bool:
        body = (await client.get(url, headers=owner.headers)).json()
        return body["state"] == state

    await eventually(lambda: state_is("up"))
    # Another organisation's window over "all monitors" is its own monitors only.
    assert (await client.post(URL, headers=stranger.headers, json={
        "name": "everything", "cron": "* * * * *", "duration": "1h",
        "all-monitors": True})).status_code == 201
    await eventually(lambda: _has_windows(running, stranger.org_id))
    runs = ScriptedCheck.runs.get("maintenance-api", 0)
    await eventually(lambda: _ran_since(runs + 2))
    assert await state_is("up")

    now = datetime.now(UTC)
    created = await client.post(URL, headers=owner.headers, json={
        "name": "deploy", "start": (now - timedelta(minutes=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(), "monitor-ids": [api["id"]]})
    assert created.status_code == 201, created.text
    await eventually(lambda: state_is("maintenance"))
    await client.delete(created.headers["location"], headers=owner.headers)
    await eventually(lambda: state_is("up"))


async def _has_windows(engine: Engine, org_id: int) -> bool:
    return org_id in engine.evaluator.windows


async def _ran_since(runs: int) -> bool:
    return ScriptedCheck.runs.get("maintenance-api", 0) >= runs
