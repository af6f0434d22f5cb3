"""``dozor probes`` on both databases: a probe is added with its token shown once, lists
with what it last reported, and is revoked; each act is in the audit log."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from dozor.app import create_app
from dozor.cli import main
from dozor.notify.probe_watch import EPOCH, ProbeWatch, Seen
from dozor.settings import Settings
from dozor.store import account_tables as a
from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.cli_results import fails, ok
from tests.test_cli_orgs import read


@pytest.fixture
def dozor(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DOZOR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DOZOR_DATABASE_URL", database_url)
    return CliRunner()


def deliver(database_url: str, tmp_path: Path, token: str) -> httpx.Response:
    """What a probe's sender does: one batch (no monitors assigned: all skipped)."""
    async def run() -> httpx.Response:
        settings = Settings.model_validate({"data_dir": tmp_path / "var",
                                            "database_url": database_url})
        app = create_app(settings)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://dozor.test") as client:
                return await client.post("/probe/v1/results", json={
                    "results": [{"monitor_id": 1, "at_ms": 1_764_547_200_000, "ok": True}],
                    "dropped": 17, "version": "1.2.3"},
                    headers={"Authorization": f"Bearer {token}"})
        finally:
            await app.state.database.dispose()
    return asyncio.run(run())


def test_the_operator_adds_lists_and_revokes_a_probe(dozor: CliRunner, database_url: str,
                                                     tmp_path: Path) -> None:
    added = ok(dozor.invoke(main, ["probes", "add", "fra-1", "--location", "fra"]))
    token = re.search(r"^dzp_[\w-]+$", added, re.MULTILINE)
    assert token is not None, added
    hashes = read(database_url, select(t.probes.c.token_hash))
    assert token.group() not in str(hashes)  # stored hashed only
    assert read(database_url, select(t.locations.c.name).order_by(t.locations.c.id)) == [
        ("fra",)]
    listing = ok(dozor.invoke(main, ["probes", "list"]))
    assert "fra-1" in listing and "fra" in listing and token.group()[:12] in listing

    answer = deliver(database_url, tmp_path, token.group())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stored": 0, "duplicates": 0, "skipped": 1}
    line = next(x for x in ok(dozor.invoke(main, ["probes", "list"])).splitlines()
                if x.startswith("fra-1"))
    assert "1.2.3" in line and " 17 " in line and "ago" in line
    assert re.search(r"\d+\.\d s", line), line  # the lag

    assert "revoked" in ok(dozor.invoke(main, ["probes", "revoke", "fra-1"]))
    assert deliver(database_url, tmp_path, token.group()).status_code == 401
    line = ok(dozor.invoke(main, ["probes", "list"])).splitlines()[1]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d$", line), line
    audit = read(database_url, select(a.audit_log.c.action, a.audit_log.c.org_id,
                                      a.audit_log.c.target).order_by(a.audit_log.c.id))
    assert audit == [("probe_added", None, "probe fra-1"), ("probe_revoked", None,
                                                           "probe fra-1")]


def test_bad_probe_commands_say_why(dozor: CliRunner) -> None:
    assert "NAME" in fails(dozor.invoke(main, ["probes", "add", "Bad Name",
                                               "--location", "fra"]))
    assert "--location" in fails(dozor.invoke(main, ["probes", "add", "p", "--location",
                                                     "FRA"]))
    ok(dozor.invoke(main, ["probes", "add", "p", "--location", "fra"]))
    assert "exists" in fails(dozor.invoke(main, ["probes", "add", "p", "--location", "waw"]))
    assert "no probe" in fails(dozor.invoke(main, ["probes", "revoke", "q"]))
    ok(dozor.invoke(main, ["probes", "revoke", "p"]))
    assert "already" in fails(dozor.invoke(main, ["probes", "revoke", "p"]))


def test_a_silent_probe_is_listed_with_since_when(dozor: CliRunner, database_url: str) -> None:
    ok(dozor.invoke(main, ["probes", "add", "fra-1", "--location", "fra"]))
    ok(dozor.invoke(main, ["probes", "add", "waw-1", "--location", "waw"]))

    async def silence_fra() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(update(t.probes).where(t.probes.c.name == "fra-1")
                                         .values(created_at=datetime(2026, 1, 2, 3, 4, 5,
                                                                     tzinfo=UTC)))
            watch = ProbeWatch(engine, (), "en", timedelta(minutes=5), listening_since=EPOCH)
            assert await watch.run_once() == Seen(silent=["fra-1"])
        finally:
            await engine.dispose()

    asyncio.run(silence_fra())
    header, fra, waw = ok(dozor.invoke(main, ["probes", "list"])).splitlines()
    column = header.index("SILENT SINCE")
    assert fra[column:].startswith("2026-01-02 03:04:05 ("), fra  # never heard: since added
    assert waw[column:].startswith("- "), waw
