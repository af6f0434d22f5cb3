"""``dozor orgs``: the operator puts organisations on plans and adds SMS credits, on
SQLite and PostgreSQL; each act is in the audit log."""

from __future__ import annotations

import asyncio
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from dozor.cli import main
from dozor.store import account_tables as a
from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.cli_results import fails, ok


@pytest.fixture
def dozor(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DOZOR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DOZOR_DATABASE_URL", database_url)
    return CliRunner()


def read(database_url: str, query: object) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        engine = create_engine(database_url)
        async with engine.connect() as connection:
            rows = [tuple(row) for row in await connection.execute(query)]  # type: ignore[call-overload]
        await engine.dispose()
        return rows
    return asyncio.run(run())


def test_the_operator_changes_a_plan_and_credits(dozor: CliRunner, database_url: str) -> None:
    listing = ok(dozor.invoke(main, ["orgs", "list"]))
    assert "self-hosted" in listing and "no limit, every 1s" in listing and "50" in listing
    until = (datetime.now(UTC) + timedelta(days=30)).date()
    assert f"paid until {until}" in ok(dozor.invoke(main, ["orgs", "plan", "1", "paid",
                                                           "--days", "30"]))
    listing = ok(dozor.invoke(main, ["orgs", "list"]))
    assert "10000 monitors, every 10s" in listing and str(until) in listing
    ok(dozor.invoke(main, ["orgs", "plan", "1", "free"]))  # no billing dates kept on free
    assert read(database_url, select(t.organizations.c.paid_until)) == [(None,)]
    ok(dozor.invoke(main, ["orgs", "plan", "1", "paid", "--days", "30"]))
    assert "150 SMS credits (was 50)" in ok(dozor.invoke(main, ["orgs", "credits", "1", "100"]))
    assert "0 SMS credits (was 150)" in ok(dozor.invoke(main, ["orgs", "credits", "1", "-999"]))
    actions = read(database_url, select(a.audit_log.c.action, a.audit_log.c.detail)
                   .order_by(a.audit_log.c.id))
    assert [action for action, _ in actions] == ["plan_changed"] * 3 + [
        "sms_credits_changed"] * 2
    assert actions[-1][1] == {"before": 150, "after": 0}


def test_bad_requests_name_what_is_wrong_and_change_nothing(dozor: CliRunner,
                                                            database_url: str) -> None:
    assert "needs its end" in fails(dozor.invoke(main, ["orgs", "plan", "1", "trial"]))
    assert "has no end" in fails(dozor.invoke(main, ["orgs", "plan", "1", "free", "--days", "3"]))
    assert "has passed" in fails(dozor.invoke(main, ["orgs", "plan", "1", "paid",
                                                     "--until", "2020-01-01"]))
    assert "no organisation 9" in fails(dozor.invoke(main, ["orgs", "credits", "9", "5"]))
    assert "'gold' is not one of" in fails(dozor.invoke(main, ["orgs", "plan", "1", "gold"]))
    assert read(database_url, select(t.organizations.c.plan, t.organizations.c.sms_credits)
                ) == [("self-hosted", 50)]


def test_the_operator_exports_an_organisation(dozor: CliRunner, database_url: str,
                                              tmp_path: Path) -> None:
    archive = tmp_path / "org-1.zip"
    assert "bytes written" in ok(dozor.invoke(main, ["privacy", "export", "1", "-o",
                                                     str(archive)]))
    manifest = json.loads(zipfile.ZipFile(archive).read("manifest.json"))
    assert manifest["organisation_id"] == 1 and manifest["files"]["monitors.jsonl"]
    assert "no organisation 9" in fails(dozor.invoke(main, ["privacy", "export", "9", "-o",
                                                            str(tmp_path / "x.zip")]))
    assert not (tmp_path / "x.zip").exists()
