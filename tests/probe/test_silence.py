"""A probe gone silent is told to the operator once, and its return once, on both
databases: a real server (``dozor serve`` under uvicorn, its dispatcher running), the
probe's own assignment poll as its contact, and a real SMTP server as the mailbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.notify.probe_watch import EPOCH, ProbeWatch, Seen
from dozor.probe import assignment
from dozor.settings import Settings
from dozor.store import notify_tables as n
from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.api.conftest import Mailbox, body
from tests.notify.conftest import add_email_channel
from tests.probe.server_helpers import add_probe, revoke
from tests.servers.dozor import serving
from tests.servers.smtp import SmtpServer

OPERATOR = ("ops@example.com", "oncall@example.com")
AFTER = timedelta(minutes=5)


@dataclass
class Installation:
    base: str
    app: FastAPI
    mailbox: Mailbox

    @property
    def watch(self) -> ProbeWatch:
        watch: ProbeWatch = self.app.state.notify.probe_watch
        return watch


@pytest.fixture
async def installation(database_url: str, tmp_path: Path, engine: AsyncEngine,
                       monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Installation]:
    """A running server whose operator is OPERATOR, mailing through a local SMTP server.
    Its watch looks when the test says (its own round comes at start, then in an hour)."""
    monkeypatch.setattr("dozor.notify.probe_watch.EVERY", timedelta(hours=1))
    async with SmtpServer() as smtp:
        await add_email_channel(engine, smtp.port)
        settings = Settings.model_validate({
            "data_dir": tmp_path, "database_url": database_url,
            "operator_email": ", ".join(OPERATOR), "probe_silent_after": "5m"})
        async with serving(settings) as (base, app):
            # As if this server had been up for long: it heard whatever probes sent.
            app.state.notify.probe_watch.listening_since = EPOCH
            yield Installation(base, app, Mailbox(smtp))


async def poll(base: str, token: str) -> None:
    """What an idle probe (no monitors) does every DOZOR_PROBE_SYNC_INTERVAL."""
    async with aiohttp.ClientSession() as session:
        await assignment.fetch(session, base, token, None)


async def last_heard(engine: AsyncEngine, name: str, ago: timedelta) -> None:
    """The probe was last heard from ``ago`` (and added an hour before that)."""
    at = datetime.now(UTC) - ago
    async with engine.begin() as connection:
        await connection.execute(update(t.probes).where(t.probes.c.name == name).values(
            last_seen_at=at, created_at=at - timedelta(hours=1)))


async def queued(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(
            select(n.messages).order_by(n.messages.c.id))).all())


async def silent_since(engine: AsyncEngine, name: str, column: str = "silent_since"
                       ) -> datetime | None:
    """The probe's mark (or another of its times)."""
    async with engine.connect() as connection:
        found: datetime | None = await connection.scalar(
            select(t.probes.c[column]).where(t.probes.c.name == name))
    return found


async def test_the_operator_is_mailed_once_when_a_probe_goes_silent_and_once_when_back(
        installation: Installation, engine: AsyncEngine, database_url: str) -> None:
    token = await add_probe(database_url, "fra-1", "fra")
    await poll(installation.base, token)
    await last_heard(engine, "fra-1", AFTER - timedelta(seconds=30))
    assert await installation.watch.run_once() == Seen()  # quiet, not silent yet

    await last_heard(engine, "fra-1", AFTER + timedelta(minutes=1))
    assert await installation.watch.run_once() == Seen(silent=["fra-1"])
    for address in OPERATOR:
        [mail] = await installation.mailbox.wait(address, "is silent")
        assert mail["Subject"] == "Dozor probe fra-1 (fra) is silent"
        assert "for more than 5m. Last contact: 20" in body(mail)
    # Looking again, or after a restart (a new watch: only the database remembers),
    # or from a second server, tells nobody again.
    assert await installation.watch.run_once() == Seen()
    again = ProbeWatch(engine, OPERATOR, "en", AFTER, listening_since=EPOCH)
    assert await again.run_once() == Seen()
    assert await silent_since(engine, "fra-1") is not None

    await poll(installation.base, token)  # the probe is back: an idle one only polls
    assert await installation.watch.run_once() == Seen(back=["fra-1"])
    assert await installation.watch.run_once() == Seen()
    for address in OPERATOR:
        [mail] = await installation.mailbox.wait(address, "is back")
        assert mail["Subject"] == "Dozor probe fra-1 (fra) is back"
        assert "reached this server again at 20" in body(mail)
    assert await silent_since(engine, "fra-1") is None
    rows = await queued(engine)
    assert [(r.event, r.org_id, r.status) for r in rows] == [
        ("probe_silent", None, "accepted")] * 2 + [("probe_back", None, "accepted")] * 2
    await asyncio.sleep(0.5)  # room for a stray second mail to arrive (none may)
    assert [len(installation.mailbox.to(address)) for address in OPERATOR] == [2, 2]


async def test_two_servers_looking_at_once_tell_the_operator_once(
        installation: Installation, database_url: str) -> None:
    tokens = [await add_probe(database_url, f"probe-{i}", "fra") for i in range(4)]
    engines = [create_engine(database_url) for _ in range(2)]
    watches = [ProbeWatch(e, OPERATOR, "en", AFTER, listening_since=EPOCH) for e in engines]
    try:
        for name in (f"probe-{i}" for i in range(4)):
            await last_heard(engines[0], name, timedelta(hours=1))
        seen = await asyncio.gather(*(watch.run_once() for watch in watches))
        assert sorted(seen[0].silent + seen[1].silent) == [f"probe-{i}" for i in range(4)]
        for token in tokens:
            await poll(installation.base, token)
        seen = await asyncio.gather(*(watch.run_once() for watch in watches))
        assert sorted(seen[0].back + seen[1].back) == [f"probe-{i}" for i in range(4)]
    finally:
        for engine in engines:
            await engine.dispose()
    for address in OPERATOR:
        await installation.mailbox.wait(address, "is silent", count=4)
        await installation.mailbox.wait(address, "is back", count=4)
    await asyncio.sleep(0.5)
    assert [len(installation.mailbox.to(address)) for address in OPERATOR] == [8, 8]


async def test_a_probe_never_heard_from_is_silent_that_long_after_it_was_added(
        engine: AsyncEngine, database_url: str) -> None:
    await add_probe(database_url, "waw-1", "waw")
    watch = ProbeWatch(engine, ("ops@example.com",), "pl", AFTER, listening_since=EPOCH)
    added = datetime.now(UTC)
    assert await watch.run_once(added + AFTER - timedelta(seconds=30)) == Seen()
    assert await watch.run_once(added + AFTER + timedelta(seconds=30)) == Seen(
        silent=["waw-1"])
    [notice] = await queued(engine)
    assert (notice.org_id, notice.to_address, notice.language) == (None, "ops@example.com",
                                                                   "pl")
    assert notice.subject == "Sonda Dozor waw-1 (waw) milczy"
    assert "Ostatni kontakt: nigdy (dodana 20" in notice.body
    assert await silent_since(engine, "waw-1") == await silent_since(engine, "waw-1",
                                                                      "created_at")


async def test_without_an_operator_address_a_silence_is_recorded_and_logged_once(
        engine: AsyncEngine, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    await add_probe(database_url, "fra-1", "fra")
    await last_heard(engine, "fra-1", timedelta(hours=2))
    watch = ProbeWatch(engine, (), "en", AFTER, listening_since=EPOCH)
    with caplog.at_level(logging.WARNING, logger="dozor.notify.probe_watch"):
        assert await watch.run_once() == Seen(silent=["fra-1"])
        assert await watch.run_once() == Seen()
    [record] = caplog.records
    assert "probe fra-1 at fra is silent" in record.getMessage()
    assert "DOZOR_OPERATOR_EMAIL" in record.getMessage()
    assert await silent_since(engine, "fra-1") is not None
    assert await queued(engine) == []


async def test_a_revoked_probe_is_never_silent_and_revoking_a_silent_one_tells_nothing(
        engine: AsyncEngine, database_url: str) -> None:
    for name in ("gone-1", "gone-2"):
        await add_probe(database_url, name, "fra")
        await last_heard(engine, name, timedelta(hours=2))
    await revoke(database_url, "gone-1")
    watch = ProbeWatch(engine, OPERATOR, "en", AFTER, listening_since=EPOCH)
    assert await watch.run_once() == Seen(silent=["gone-2"])
    await revoke(database_url, "gone-2")
    assert await silent_since(engine, "gone-2") is None
    assert await watch.run_once() == Seen()
    assert {row.event for row in await queued(engine)} == {"probe_silent"}


async def test_a_server_just_started_calls_no_probe_silent_before_it_listened_long_enough(
        engine: AsyncEngine, database_url: str) -> None:
    # While the server was down no probe could reach it: their last contacts are old.
    await add_probe(database_url, "fra-1", "fra")
    await last_heard(engine, "fra-1", timedelta(hours=2))
    started = datetime.now(UTC)
    watch = ProbeWatch(engine, OPERATOR, "en", AFTER, listening_since=started)
    assert await watch.run_once(started + AFTER - timedelta(seconds=1)) == Seen()
    assert await watch.run_once(started + AFTER) == Seen(silent=["fra-1"])
