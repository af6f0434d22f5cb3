"""``dozor privacy``: the operator erases an organisation or a contact, lists requests
with their deadlines, restricts processing, and records a breach with its notices, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, insert, select, update

from dozor.cli import main
from dozor.store import account_tables as a
from dozor.store import notify_tables as n
from dozor.store import privacy_tables as pv
from dozor.store import tables as t
from tests.api import seed
from tests.cli_results import fails, ok
from tests.test_cli_orgs import dozor, read

__all__ = ["dozor"]


def prepare(database_url: str) -> None:
    """Organisation 1 with an owner contact (a confirmed email point) and a monitor, and
    organisation 2 with nobody to tell."""
    async def run() -> None:
        async with seed.database(database_url) as db:
            contact, _ = await seed.contact(db, 1, "Olga Owner", [
                {"kind": "email", "address": "olga@example.com"}])
            await db.execute(update(n.contacts).where(n.contacts.c.id == contact)
                             .values(is_owner=True))
            await seed.contact(db, 1, "Piotr", [{"kind": "email", "address": "piotr@example.com"}])
            await db.execute(insert(t.organizations).values(
                id=2, slug="globex", name="Globex", plan="free", created_at=datetime.now(UTC)))
            await db.execute(insert(t.monitors).values(
                org_id=2, name="shop", kind="tcp", config={"host": "127.0.0.1", "port": 9},
                interval_ms=60_000, retry_interval_ms=20_000, timeout_ms=10_000,
                confirm_after=3, recover_after=1, tags=[], paused=False, revision=1,
                created_at=datetime.now(UTC), updated_at=datetime.now(UTC)))
    asyncio.run(run())


def test_the_operator_records_a_breach_and_the_owners_are_told(
        dozor: CliRunner, database_url: str, tmp_path: Path) -> None:
    prepare(database_url)
    summary = tmp_path / "summary.txt"
    summary.write_text("A backup disk was stolen; it held contact addresses.\n")
    detected = (datetime.now(UTC) - timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M")
    result = dozor.invoke(main, ["privacy", "breach", "--org", "1", "--org", "2",
                                 "--detected", detected, "--summary-file", str(summary)])
    assert "1 notices queued to the owners of 2 organisation(s)" in ok(result)
    assert "organisation 2 has no confirmed owner channel" in result.output
    rows = read(database_url, select(n.messages.c.to_address, n.messages.c.point_id,
                                     n.messages.c.body, n.messages.c.status)
                .where(n.messages.c.event == "breach_notice"))
    [(to, point, body, status)] = rows
    assert to is None and point is not None and status == "queued"
    assert "A backup disk was stolen" in body  # to Olga only: Piotr is not an owner
    assert read(database_url, select(pv.breach_notices.c.org_id, pv.breach_notices.c.messages,
                                     pv.breach_notices.c.within_deadline)
                .order_by(pv.breach_notices.c.org_id)) == [(1, 1, True), (2, 0, True)]
    assert ("breach_notified",) in read(database_url, select(a.audit_log.c.action))
    listing = ok(dozor.invoke(main, ["privacy", "breaches"]))
    assert "yes" in listing and listing.count("\n") == 3  # a header and two organisations

    late = (datetime.now(UTC) - timedelta(days=4)).strftime("%Y-%m-%d %H:%M")
    result = dozor.invoke(main, ["privacy", "breach", "--all-orgs", "--detected", late,
                                 "--summary-file", str(summary)])
    assert "more than 72 hours after detection" in ok(result)
    assert (2, False) in read(database_url, select(pv.breach_notices.c.breach_id,
                                                   pv.breach_notices.c.within_deadline))


def test_bad_breach_requests_name_the_field_and_record_nothing(
        dozor: CliRunner, database_url: str, tmp_path: Path) -> None:
    empty, text = tmp_path / "empty.txt", tmp_path / "text.txt"
    empty.write_text("  \n")
    text.write_text("something happened")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")
    assert "summary:" in fails(dozor.invoke(main, ["privacy", "breach", "--org", "1",
                                                   "--detected", now, "--summary-file",
                                                   str(empty)]))
    assert "no organisation 9" in fails(dozor.invoke(main, [
        "privacy", "breach", "--org", "9", "--detected", now, "--summary-file", str(text)]))
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert "detected: in the future" in fails(dozor.invoke(main, [
        "privacy", "breach", "--org", "1", "--detected", future, "--summary-file", str(text)]))
    assert "--org" in fails(dozor.invoke(main, ["privacy", "breach", "--detected", now,
                                                "--summary-file", str(text)]))
    assert read(database_url, select(func.count()).select_from(pv.breaches)) == [(0,)]


def test_the_operator_erases_a_contact_then_an_organisation(
        dozor: CliRunner, database_url: str) -> None:
    prepare(database_url)
    [(piotr,)] = read(database_url, select(n.contacts.c.id).where(n.contacts.c.name == "Piotr"))
    assert "no contact 99" in fails(dozor.invoke(main, ["privacy", "erase", "1", "--contact",
                                                        "99", "--yes"]))
    assert "erased" in ok(dozor.invoke(main, ["privacy", "erase", "1", "--contact",
                                              str(piotr), "--yes"]))
    assert read(database_url, select(n.contact_points.c.address)) == [("olga@example.com",)]
    aborted = dozor.invoke(main, ["privacy", "erase", "2"], input="n\n")
    assert aborted.exit_code == 1
    assert read(database_url, select(func.count()).select_from(t.monitors)) == [(1,)]
    assert "organisation 2 erased" in ok(dozor.invoke(main, ["privacy", "erase", "2"],
                                                      input="y\n"))
    assert read(database_url, select(t.organizations.c.id)) == [(1,)]
    assert read(database_url, select(func.count()).select_from(t.monitors)) == [(0,)]
    listing = ok(dozor.invoke(main, ["privacy", "requests", "--all"]))
    assert listing.count("done") == 2 and "operator" in listing
    assert "OVERDUE" not in ok(dozor.invoke(main, ["privacy", "requests"]))


def test_the_operator_restricts_and_lifts(dozor: CliRunner, database_url: str) -> None:
    assert "processing restricted" in ok(dozor.invoke(main, ["privacy", "restrict", "1"]))
    assert "(already so)" in ok(dozor.invoke(main, ["privacy", "restrict", "1"]))
    [(since,)] = read(database_url, select(t.organizations.c.restricted_at))
    assert since is not None
    assert "processing resumed" in ok(dozor.invoke(main, ["privacy", "restrict", "1",
                                                          "--lift"]))
    assert read(database_url, select(t.organizations.c.restricted_at)) == [(None,)]
    assert "no organisation 9" in fails(dozor.invoke(main, ["privacy", "restrict", "9"]))

