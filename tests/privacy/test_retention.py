"""Retention by plan, with time moved forward: the job removes exactly what is due (an
organisation past its date, old finished messages with their events, long-expired
sessions, tokens and codes) and nothing else; the dry run lists the same and changes
nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.cli import main
from dozor.privacy import retention
from dozor.settings import Settings
from dozor.store import account_tables as a
from dozor.store import accounts
from dozor.store import notify_tables as n
from dozor.store import tables as t
from tests.api import seed

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
WINDOWS = retention.Windows.from_settings(Settings())
DAY = timedelta(days=1)
TRIAL, PAID, MESSAGES = WINDOWS.plans.trial, WINDOWS.plans.paid, WINDOWS.messages
KEEPER = 1  # the installation's own organisation (self-hosted): never due


async def org(conn: AsyncConnection, name: str, plan: str, **ends: datetime | None) -> int:
    return int((await conn.execute(insert(t.organizations).values(
        slug=name, name=name, plan=plan, created_at=NOW - 1000 * DAY, sms_credits=0, **ends,
    ).returning(t.organizations.c.id))).scalar_one())


async def organisations(conn: AsyncConnection) -> dict[str, int]:
    return {
        "trial over": await org(conn, "trial-over", "trial",
                                trial_ends_at=NOW - TRIAL - DAY),
        "trial a day short": await org(conn, "trial-short", "trial",
                                       trial_ends_at=NOW - TRIAL + DAY),
        "paid over": await org(conn, "paid-over", "paid", paid_until=NOW - PAID - DAY),
        "paid a day short": await org(conn, "paid-short", "paid",
                                      paid_until=NOW - PAID + DAY),
        # A trial long over that became free, or paid: judged by the plan it is on now.
        "free": await org(conn, "free", "free", trial_ends_at=NOW - 5 * PAID),
        "paid after a trial": await org(conn, "paid-now", "paid",
                                        trial_ends_at=NOW - 5 * PAID,
                                        paid_until=NOW + 30 * DAY),
        "paid without an end": await org(conn, "paid-open", "paid"),
    }


async def message(conn: AsyncConnection, status: str, created: datetime,
                  finished: datetime | None = None, accepted: datetime | None = None,
                  events: int = 2) -> int:
    message_id = await seed.message(conn, KEEPER, contact_id=None, point_id=None,
                                    status=status, created_at=created, finished_at=finished,
                                    accepted_at=accepted)
    if events:
        await conn.execute(insert(n.message_events), [
            {"message_id": message_id, "at": created, "kind": "attempt"}] * events)
    return message_id


async def messages(conn: AsyncConnection) -> dict[str, int]:
    cutoff = NOW - MESSAGES
    return {  # in the order they were written, so ids grow with time as in life
        "queued for ever": await message(conn, "queued", cutoff - 400 * DAY),
        "sending for ever": await message(conn, "sending", cutoff - 400 * DAY),
        "delivered a year and a day ago": await message(conn, "delivered", cutoff - 3 * DAY,
                                                        cutoff - DAY),
        "accepted, never receipted": await message(conn, "accepted", cutoff - 2 * DAY,
                                                   accepted=cutoff - DAY),
        "failed a year less a day ago": await message(conn, "failed", cutoff - 2 * DAY,
                                                      cutoff + DAY),
        "cancelled a year and a day ago": await message(conn, "cancelled", cutoff - DAY,
                                                        cutoff - DAY, events=0),
        "delivered yesterday": await message(conn, "delivered", NOW - 2 * DAY, NOW - DAY),
    }


async def user(conn: AsyncConnection) -> int:
    user_id = int((await conn.execute(insert(a.users).values(
        **await accounts.email_fields(conn, f"{secrets.token_hex(4)}@example.com"),
        name="Kept", password_hash="x",
        failed_logins=0, created_at=NOW - 900 * DAY).returning(a.users.c.id))).scalar_one())
    await conn.execute(insert(a.memberships).values(user_id=user_id, org_id=KEEPER,
                                                    role="owner", created_at=NOW))
    return user_id


async def credentials(conn: AsyncConnection) -> None:
    """Sessions, email tokens and codes of a kept account: those marked ``gone`` are past
    the grace of 30 days."""
    user_id, before = await user(conn), NOW - retention.GRACE
    for expires, gone in ((before - DAY, True), (before + DAY, False), (NOW + DAY, False)):
        await conn.execute(insert(a.sessions).values(
            token_hash=f"{'gone' if gone else 'kept'}-{secrets.token_hex(8)}", user_id=user_id,
            org_id=KEEPER, created_at=expires - DAY, expires_at=expires))
    for expires, used, gone in ((before - DAY, None, True), (NOW + DAY, before - DAY, True),
                                (NOW + DAY, before + DAY, False), (NOW + DAY, None, False)):
        await conn.execute(insert(a.email_tokens).values(
            token_hash=f"{'gone' if gone else 'kept'}-{secrets.token_hex(8)}", user_id=user_id,
            purpose="reset", created_at=expires - 2 * DAY, expires_at=expires, used_at=used))
    _, (point_id,) = await seed.contact(conn, KEEPER, "on-call",
                                        [{"kind": "email", "address": "a@example.com"}])
    for expires, gone in ((before - DAY, True), (before + DAY, False)):
        await conn.execute(insert(n.verifications).values(
            point_id=point_id, org_id=KEEPER, method="code",
            code_hash="gone" if gone else "kept", text_shown="Confirm", expires_at=expires,
            failed_tries=0, created_at=expires - DAY))


async def setup(engine: AsyncEngine) -> tuple[dict[str, int], dict[str, int]]:
    async with engine.begin() as conn:
        orgs, sent = await organisations(conn), await messages(conn)
        await credentials(conn)
    return orgs, sent


async def remaining(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        def ids(table: Any, column: Any) -> Any:
            return conn.execute(select(column).select_from(table).order_by(column))
        return {
            "organisations": set((await ids(t.organizations, t.organizations.c.id)).scalars()),
            "messages": set((await ids(n.messages, n.messages.c.id)).scalars()),
            "events": list((await ids(n.message_events,
                                      n.message_events.c.message_id)).scalars()),
            "sessions": [h.split("-")[0] for h in (
                await ids(a.sessions, a.sessions.c.token_hash)).scalars()],
            "email tokens": [h.split("-")[0] for h in (
                await ids(a.email_tokens, a.email_tokens.c.token_hash)).scalars()],
            "codes": list((await ids(n.verifications, n.verifications.c.code_hash)).scalars()),
        }


async def test_retention_removes_exactly_what_is_due(engine: AsyncEngine,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "CHUNK", 2)  # several chunks, as on a large log
    orgs, sent = await setup(engine)
    before = await remaining(engine)

    report = await retention.run(engine, WINDOWS, NOW)

    after = await remaining(engine)
    erased = {orgs["trial over"], orgs["paid over"]}
    assert [o.id for o in report.organisations] == [orgs["trial over"], orgs["paid over"]]
    assert not report.failed
    assert after["organisations"] == before["organisations"] - erased
    assert KEEPER in after["organisations"]
    gone = {sent["delivered a year and a day ago"], sent["accepted, never receipted"],
            sent["cancelled a year and a day ago"]}
    assert after["messages"] == before["messages"] - gone
    assert set(after["events"]) == set(before["events"]) - gone  # by ON DELETE CASCADE
    assert len(after["events"]) == len(before["events"]) - 4
    assert after["sessions"] == ["kept", "kept"]
    assert after["email tokens"] == ["kept", "kept"]
    assert after["codes"] == ["kept"]
    assert (report.messages, report.sessions, report.email_tokens,
            report.verifications) == (3, 1, 2, 1)
    async with engine.connect() as conn:
        recorded = (await conn.execute(select(a.audit_log.c.target, a.audit_log.c.detail)
                                       .where(a.audit_log.c.action == "erasure"))).all()
    assert sorted(r.target for r in recorded) == sorted(f"organisation {i}" for i in erased)
    assert {r.detail["reason"] for r in recorded} == {"retention"}
    # A second run finds nothing more.
    again = await retention.run(engine, WINDOWS, NOW)
    assert (again.organisations, again.messages, again.sessions) == ([], 0, 0)


async def test_the_dry_run_lists_the_same_and_changes_nothing(engine: AsyncEngine) -> None:
    orgs, _ = await setup(engine)
    before = await remaining(engine)

    dry = await retention.run(engine, WINDOWS, NOW, dry_run=True)

    assert await remaining(engine) == before
    listed = {o.id: o for o in dry.organisations}
    assert set(listed) == {orgs["trial over"], orgs["paid over"]}
    trial = listed[orgs["trial over"]]
    assert (trial.plan, trial.delete_at) == ("trial", NOW - DAY)
    assert f"due {NOW - DAY:%Y-%m-%d}" in trial.line()
    done = await retention.run(engine, WINDOWS, NOW)
    assert dry.lines() == done.lines()


async def test_a_day_later_the_ones_a_day_short_are_due(engine: AsyncEngine) -> None:
    orgs, _ = await setup(engine)
    later = await retention.run(engine, WINDOWS, NOW + 2 * DAY, dry_run=True)
    assert {o.id for o in later.organisations} == {
        orgs["trial over"], orgs["paid over"], orgs["trial a day short"],
        orgs["paid a day short"]}


async def test_an_erasure_that_fails_leaves_the_rest_of_the_job_running(
        engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    orgs, _ = await setup(engine)
    erase = retention.erase_organisation

    async def failing(engine: AsyncEngine, org_id: int, **options: Any) -> Any:
        if org_id == orgs["paid over"]:
            raise RuntimeError("disk full")
        return await erase(engine, org_id, **options)
    monkeypatch.setattr(retention, "erase_organisation", failing)

    report = await retention.run(engine, WINDOWS, NOW)

    assert report.failed == [orgs["paid over"]] and report.messages == 3
    assert "FAILED" in "\n".join(report.lines())
    left = (await remaining(engine))["organisations"]
    assert orgs["paid over"] in left and orgs["trial over"] not in left


def test_the_command_lists_then_removes(database_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from dozor.store.db import create_engine

    async def seeded() -> dict[str, int]:
        engine = create_engine(database_url)
        async with engine.begin() as conn:
            now = datetime.now(UTC)
            found = {"over": await org(conn, "over", "trial",
                                       trial_ends_at=now - TRIAL - DAY),
                     "short": await org(conn, "short", "trial",
                                        trial_ends_at=now - TRIAL + DAY)}
            await message(conn, "delivered", now - MESSAGES - 2 * DAY, now - MESSAGES - DAY)
        await engine.dispose()
        return found

    async def count(table: Any) -> int:
        engine = create_engine(database_url)
        async with engine.connect() as conn:
            found = int(await conn.scalar(select(func.count()).select_from(table)) or 0)
        await engine.dispose()
        return found

    orgs = asyncio.run(seeded())
    monkeypatch.setenv("DOZOR_DATABASE_URL", database_url)
    runner = CliRunner()
    dry = runner.invoke(main, ["privacy", "retention", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("would remove:")
    assert f"organisation {orgs['over']} (over): trial" in dry.output
    assert "(short)" not in dry.output and "messages: 1" in dry.output
    assert asyncio.run(count(t.organizations)) == 3
    done = runner.invoke(main, ["privacy", "retention"])
    assert done.exit_code == 0, done.output
    assert "organisations: 1" in done.output and "messages: 1" in done.output
    assert asyncio.run(count(t.organizations)) == 2
    assert asyncio.run(count(n.messages)) == 0
