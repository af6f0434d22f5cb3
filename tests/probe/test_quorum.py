"""Confirmation across locations with real parts, on both databases: the server checks
from its own location (``local``), two probes deliver results from ``fra`` and ``waw``
over ``POST /probe/v1/results``, and the engine running in the same process decides the
monitor's state from the three. One location down is a regional problem and pages
nobody; a majority (or the rule) down opens one incident and queues the alerts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from dozor.config.specs import parse_monitor
from dozor.engine.engine import Engine
from dozor.notify import contacts
from dozor.store import monitors as store
from dozor.store import notify_tables as n
from dozor.store import tables as t
from tests.api.conftest import Person
from tests.api.seed import database
from tests.engine.conftest import eventually
from tests.fakes import ScriptedCheck
from tests.probe.server_helpers import add_probe, bearer, location_id, result

RESULTS = "/probe/v1/results"


@pytest.fixture
async def dozor(app: FastAPI) -> AsyncIterator[Engine]:
    """The application's own engine, running: it checks from ``local``."""
    ScriptedCheck.up.clear()
    ScriptedCheck.runs.clear()
    engine: Engine = app.state.engine
    await engine.start()
    yield engine
    await engine.stop()


class Scene:
    """A monitor checked from local, fra and waw, a probe at each remote location, and
    an owner with one confirmed email address to be alerted."""

    def __init__(self, client: httpx.AsyncClient, owner: Person, database_url: str,
                 dozor: Engine) -> None:
        self.client, self.owner, self.url, self.dozor = client, owner, database_url, dozor
        self.tokens: dict[str, str] = {}
        self.monitor_id = 0

    async def start(self, **fields: Any) -> None:
        for location in ("fra", "waw"):
            self.tokens[location] = await add_probe(self.url, f"{location}-1", location)
        data = {"name": "shop", "kind": "scripted", "key": "shop", "interval": "1s",
                "retry-interval": "1s", "confirm-after": 1,
                "locations": ["local", "fra", "waw"]} | fields
        now = datetime.now(UTC)
        async with database(self.url) as connection:
            self.monitor_id = await store.create_monitor(connection, parse_monitor(data),
                                                         self.owner.org_id)
            contact = await contacts.add_contact(connection, self.owner.org_id,
                                                 contacts.ContactSpec(name="ala"), now)
            point = await contacts.add_point(connection, self.owner.org_id, contact,
                                             contacts.PointSpec(kind="email",
                                                                address="ala@example.com"),
                                             now)
            await connection.execute(n.contact_points.update()
                                     .where(n.contact_points.c.id == point)
                                     .values(confirmed_at=now))
        await self.dozor.reload()
        await eventually(lambda: self._checked_here())

    async def _checked_here(self) -> bool:
        return ScriptedCheck.runs.get("shop", 0) > 0

    def local(self, up: bool) -> None:
        ScriptedCheck.up["shop"] = up

    async def probe(self, location: str, *oks: bool, ago: float = 0.0) -> None:
        """Results from ``location``, a millisecond apart, the last ``ago`` seconds ago."""
        at = int((datetime.now(UTC) - timedelta(seconds=ago)).timestamp() * 1000)
        batch = [result(self.monitor_id, at - len(oks) + 1 + i, ok=ok)
                 for i, ok in enumerate(oks)]
        await self.post(location, batch)

    async def post(self, location: str, batch: list[dict[str, Any]]) -> None:
        sent = await self.client.post(RESULTS, headers=bearer(self.tokens[location]),
                                      json={"results": batch, "dropped": 0})
        assert sent.status_code == 200, sent.text

    async def view(self) -> dict[str, Any]:
        await self.dozor.writer.flush()
        read = await self.client.get(f"/api/v1/monitors/{self.monitor_id}",
                                     headers=self.owner.headers)
        assert read.status_code == 200, read.text
        return dict(read.json())

    async def settles(self, state: str, regional: list[str] | None) -> dict[str, Any]:
        """Wait until the monitor shows this state and regional problem."""
        found: dict[str, Any] = {}

        async def shown() -> bool:
            found.update(await self.view())
            return found["state"] == state and found["regional"] == regional
        await eventually(shown)
        return found

    async def incidents(self) -> list[Any]:
        async with database(self.url) as connection:
            return list((await connection.execute(
                select(t.incidents).where(t.incidents.c.monitor_id == self.monitor_id)
                .order_by(t.incidents.c.id))).all())

    async def delivered(self) -> None:
        async with database(self.url) as connection:
            await connection.execute(n.messages.update().where(n.messages.c.event == "down")
                                     .values(status="delivered"))

    async def messages(self) -> list[tuple[str, str]]:
        """The alerts queued (the owner's sign-up mail left out)."""
        async with database(self.url) as connection:
            rows = (await connection.execute(select(n.messages).where(
                n.messages.c.event.in_(["down", "up"])).order_by(n.messages.c.id))).all()
        return [(row.event, row.status) for row in rows]


@pytest.fixture
async def scene(client: httpx.AsyncClient, owner: Person, database_url: str,
                dozor: Engine) -> Scene:
    return Scene(client, owner, database_url, dozor)


async def test_one_location_down_is_regional_and_two_open_one_incident(
        scene: Scene) -> None:
    await scene.start()
    await scene.probe("waw", True)
    await scene.settles("up", None)
    await scene.probe("fra", False)
    shown = await scene.settles("up", ["fra"])
    assert shown["open_incident_id"] is None
    assert await scene.incidents() == [] and await scene.messages() == []

    await scene.probe("waw", False)
    shown = await scene.settles("down", None)
    [incident] = await scene.incidents()
    assert shown["open_incident_id"] == incident.id and incident.closed_at is None
    await eventually(lambda: _equal(scene.messages(), [("down", "queued")]))
    await scene.delivered()  # as the dispatcher would: so the recovery is told too
    await scene.probe("fra", False)  # still down from two: the same outage
    await scene.probe("waw", False)
    assert len(await scene.incidents()) == 1

    # Fewer than two down: the monitor is up again, and fra's outage is regional.
    await scene.probe("waw", True)
    await scene.settles("up", ["fra"])
    [incident] = await scene.incidents()
    assert incident.closed_at is not None and incident.resolution == "recovered"
    await eventually(lambda: _equal(scene.messages(), [("down", "delivered"),
                                                        ("up", "queued")]))
    await scene.probe("fra", True)
    await scene.settles("up", None)


async def test_a_monitor_checked_by_one_probe_alone_opens_and_closes_its_incidents(
        scene: Scene) -> None:
    scene.tokens["waw"] = await add_probe(scene.url, "waw-1", "waw")
    async with database(scene.url) as connection:
        scene.monitor_id = await store.create_monitor(connection, parse_monitor({
            "name": "far", "kind": "scripted", "key": "far", "interval": "1s",
            "retry-interval": "1s", "confirm-after": 2, "locations": ["waw"]}),
            scene.owner.org_id)
    await scene.dozor.reload()
    assert scene.monitor_id in scene.dozor.monitors  # held, to be judged by waw
    assert scene.monitor_id not in scene.dozor.scheduler  # never checked here
    await scene.probe("waw", True)
    await scene.settles("up", None)
    await scene.probe("waw", False, False)  # confirm-after 2 at waw
    await scene.settles("down", None)
    [incident] = await scene.incidents()
    await scene.probe("waw", True)
    await scene.settles("up", None)
    [incident] = await scene.incidents()
    assert incident.closed_at is not None
    assert ScriptedCheck.runs.get("far", 0) == 0


async def test_a_location_not_heard_lately_does_not_count_as_down(scene: Scene) -> None:
    await scene.start()
    await scene.probe("fra", False, ago=300)  # far beyond 1s + 0.8s timeout + grace
    await scene.probe("waw", True)
    scene.local(False)
    await scene.settles("up", ["local"])
    assert await scene.incidents() == [] and await scene.messages() == []
    await scene.probe("waw", False)  # a second fresh location down: confirmed
    await scene.settles("down", None)
    assert len(await scene.incidents()) == 1


async def test_the_rule_all_needs_every_location(scene: Scene) -> None:
    await scene.start(**{"confirm-locations": "all"})
    await scene.probe("fra", False)
    await scene.probe("waw", True)
    scene.local(False)
    await scene.settles("up", ["fra", "local"])
    assert await scene.incidents() == []
    await scene.probe("waw", False)
    await scene.settles("down", None)
    assert len(await scene.incidents()) == 1


async def test_results_from_a_location_are_evaluated_in_time_order_older_ones_ignored(
        scene: Scene) -> None:
    await scene.start(**{"confirm-locations": 1})
    await scene.probe("waw", True)
    await scene.settles("up", None)
    at = int(datetime.now(UTC).timestamp() * 1000)
    # One batch out of order: evaluated oldest first, so fra ends down.
    await scene.post("fra", [result(scene.monitor_id, at, ok=False),
                             result(scene.monitor_id, at - 500, ok=True)])
    await scene.settles("down", None)
    # Older than the last evaluated from fra (a late or resent result): stored, ignored.
    await scene.post("fra", [result(scene.monitor_id, at - 100, ok=True)])
    assert (await scene.view())["state"] == "down"
    await scene.post("fra", [result(scene.monitor_id, at + 1, ok=True)])
    await scene.settles("up", None)
    [incident] = await scene.incidents()
    assert incident.closed_at is not None
    fra = await location_id(scene.url, "fra")
    async with database(scene.url) as connection:
        stored = (await connection.execute(select(t.results.c.at).where(
            t.results.c.monitor_id == scene.monitor_id, t.results.c.location_id == fra))
        ).scalars().all()
    assert sorted(stored) == [at - 500, at - 100, at, at + 1]


async def _equal(found: Any, expected: object) -> bool:
    return bool(await found == expected)
