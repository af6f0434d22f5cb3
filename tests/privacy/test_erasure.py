"""Erasure: after an account's or a contact's erasure, no row in any table holds their
personal data (every table of the schema is scanned, so a new table is covered), the
rest is untouched, and the request is on record with its deadline and when it was done."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, insert, select

from dozor.privacy import erasure, export, requests
from dozor.store import account_tables as a
from dozor.store import notify_tables as n
from dozor.store import privacy_tables as pv
from dozor.store import tables as t
from dozor.store.db import create_engine
from tests.api import seed
from tests.api.conftest import Person
from tests.privacy.test_export import populate


async def rows_holding(database_url: str, *needles: str) -> list[tuple[str, dict[str, Any]]]:
    """Every row of every table in which one of ``needles`` appears in any column."""
    found = []
    async with seed.database(database_url) as db:
        for table in t.metadata.sorted_tables:
            for row in (await db.execute(select(table))).mappings():
                text = json.dumps({k: str(v) for k, v in row.items()}).lower()
                if any(needle.lower() in text for needle in needles):
                    found.append((table.name, dict(row)))
    return found


async def held_for(database_url: str, org_id: int) -> dict[str, int]:
    counts = {}
    async with seed.database(database_url) as db:
        for name, scope in export.SCOPES.items():
            counts[name] = (await db.execute(select(func.count()).select_from(
                t.metadata.tables[name]).where(scope(org_id)))).scalar_one()
    return counts


async def slug_of(database_url: str, org_id: int) -> str:
    async with seed.database(database_url) as db:
        slug: str = await db.scalar(select(t.organizations.c.slug)
                                    .where(t.organizations.c.id == org_id))
    return slug


async def test_after_an_accounts_erasure_no_table_holds_its_personal_data(
        client: httpx.AsyncClient, owner: Person, viewer: Person, stranger: Person,
        database_url: str) -> None:
    await populate(client, owner, database_url, "acme")
    await populate(client, stranger, database_url, "globex")
    async with seed.database(database_url) as db:  # the stranger also helps at Acme
        await db.execute(insert(a.memberships).values(
            user_id=2, org_id=owner.org_id, role="admin", created_at=datetime.now(UTC)))
        # The viewer fixture moved Vera out of the organisation her sign-up made: it is
        # left without members (it cannot be so otherwise), holding her name. Gone here.
        await db.execute(delete(t.organizations).where(
            t.organizations.c.name == "Vera Viewer's organisation"))
    needles = ("acme", "owner@example.com", "Olga Owner", "viewer@example.com",
               "Vera Viewer")
    assert {name for name, _ in await rows_holding(database_url, *needles)} >= {
        "users", "monitors", "contacts", "contact_points", "consents", "verifications",
        "status_subscribers", "incident_comments", "status_notes", "message_events"}
    kept = await held_for(database_url, stranger.org_id)

    refused = await client.post("/api/v1/account/erasure", headers=owner.headers,
                                json={"confirm": "not-the-slug"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "confirm"
    assert (await client.post("/api/v1/account/erasure", headers=viewer.headers, json={
        "confirm": await slug_of(database_url, owner.org_id)})).status_code == 403
    assert await rows_holding(database_url, "acme shop")  # nothing changed so far

    answer = await client.post("/api/v1/account/erasure", headers=owner.headers, json={
        "confirm": await slug_of(database_url, owner.org_id)})
    assert answer.status_code == 202, answer.text
    request = answer.json()
    requested = datetime.fromisoformat(request["requested_at"])
    assert (datetime.fromisoformat(request["due_by"]) - requested).days in (5, 6, 7)

    assert await rows_holding(database_url, *needles) == []
    left = {name: rows for name, rows in (await held_for(database_url, owner.org_id)).items()
            if rows}
    assert left == {"erasure_requests": 2}  # this one, and populate()'s of a contact
    assert await held_for(database_url, stranger.org_id) == kept
    async with seed.database(database_url) as db:
        users = set((await db.execute(select(a.users.c.email))).scalars())
        assert users == {"stranger@example.com"}  # also a member elsewhere: kept
        [done] = (await db.execute(select(pv.erasure_requests).where(
            pv.erasure_requests.c.contact_id.is_(None)))).all()
        assert done.done_at is not None and done.detail["total"] > 20
        assert (done.org_id, done.contact_id, done.source) == (owner.org_id, None, "request")
        [entry] = (await db.execute(select(a.audit_log).where(
            a.audit_log.c.action == "erasure", a.audit_log.c.target.like("organisation%")))
        ).all()
        assert entry.org_id is None and entry.target == f"organisation {owner.org_id}"
    assert (await client.get("/api/v1/monitors", headers=owner.headers)).status_code == 401
    assert (await client.get("/api/v1/monitors", headers=stranger.headers)).status_code == 200


async def test_an_erasure_cut_short_is_finished_by_running_it_again(
        client: httpx.AsyncClient, owner: Person, stranger: Person, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    await populate(client, owner, database_url, "acme")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as db:
            await requests.request_erasure(db, owner.org_id, source="operator",
                                           requested_by=None, now=datetime.now(UTC))
        real_delete = erasure._delete

        async def crash_at_messages(conn: Any, table: Any, where: Any) -> int:
            if table.name == "messages":
                raise RuntimeError("killed")
            return await real_delete(conn, table, where)

        monkeypatch.setattr(erasure, "_delete", crash_at_messages)
        with pytest.raises(RuntimeError):
            await erasure.run_open(engine, datetime.now(UTC))
        assert await rows_holding(database_url, "acme")  # part done, still recorded open
        async with engine.connect() as db:
            assert len(await requests.open_requests(db)) == 1
            results = await db.scalar(select(func.count()).select_from(t.results))
            assert results == 0  # deleted before the crash
            restricted = await db.scalar(select(t.organizations.c.restricted_at).where(
                t.organizations.c.id == owner.org_id))
            assert restricted is not None  # frozen: nothing new was processed meanwhile
        monkeypatch.setattr(erasure, "_delete", real_delete)
        assert await erasure.run_open(engine, datetime.now(UTC)) == 1
        assert await rows_holding(database_url, "acme", "owner@example.com") == []
        async with engine.connect() as db:
            assert await requests.open_requests(db) == []
        assert await erasure.run_open(engine, datetime.now(UTC)) == 0
    finally:
        await engine.dispose()


async def test_after_a_contacts_erasure_no_table_holds_their_data(
        client: httpx.AsyncClient, owner: Person, stranger: Person, viewer: Person,
        database_url: str) -> None:
    await populate(client, owner, database_url, "acme")
    contacts = (await client.get("/api/v1/contacts", headers=owner.headers)).json()["items"]
    [on_call] = [c for c in contacts if c["name"] == "acme on-call"]
    needles = ("acme on-call", "acme.example/hook")
    assert {name for name, _ in await rows_holding(database_url, *needles)} >= {
        "contacts", "contact_points", "consents"}
    before = await held_for(database_url, owner.org_id)
    async with seed.database(database_url) as db:
        theirs = await db.scalar(select(func.count()).select_from(n.messages).where(
            n.messages.c.contact_id == on_call["id"]))
    assert theirs == 2  # the confirmation code, and an alert
    path = f"/api/v1/contacts/{on_call['id']}/erasure"
    assert (await client.post(path, headers=viewer.headers)).status_code == 403
    assert (await client.post(path, headers=stranger.headers)).status_code == 404

    answer = await client.post(path, headers=owner.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"]["contacts"] == 1
    assert await rows_holding(database_url, *needles) == []
    after = await held_for(database_url, owner.org_id)
    assert after["monitors"] == before["monitors"]
    assert after["contacts"] == before["contacts"] - 1
    assert after["messages"] == before["messages"] - theirs  # the owner's own remain
    policies = (await client.get("/api/v1/policies", headers=owner.headers)).json()["items"]
    assert all(on_call["id"] not in p["contact_ids"] for p in policies)
    async with seed.database(database_url) as db:
        [done] = (await db.execute(select(pv.erasure_requests).where(
            pv.erasure_requests.c.contact_id == on_call["id"]))).all()
        assert done.done_at is not None
        targets = [row.target for row in (await db.execute(select(a.audit_log).where(
            a.audit_log.c.action == "erasure"))).all()]
        assert f"contact {on_call['id']}" in targets
    assert (await client.post(path, headers=owner.headers)).status_code == 404


async def test_restriction_stops_processing_and_keeps_the_data(
        client: httpx.AsyncClient, owner: Person, viewer: Person, database_url: str) -> None:
    from dozor.store import monitors as store

    await populate(client, owner, database_url, "acme")
    before = await held_for(database_url, owner.org_id)
    path = "/api/v1/account/restriction"
    assert (await client.post(path, headers=viewer.headers,
                              json={"restricted": True})).status_code == 403
    answer = await client.post(path, headers=owner.headers, json={"restricted": True})
    assert answer.status_code == 200 and answer.json()["restricted_at"]
    state = (await client.get("/api/v1/account/privacy", headers=owner.headers)).json()
    assert state["restricted_at"] == answer.json()["restricted_at"]
    async with seed.database(database_url) as db:
        rows = await store.monitors_to_run(db)
        assert rows and all(row.restricted for row in rows)
    assert (await client.get("/api/v1/monitors", headers=owner.headers)).status_code == 200
    lifted = await client.post(path, headers=owner.headers, json={"restricted": False})
    assert lifted.json() == {"restricted_at": None}
    async with seed.database(database_url) as db:
        assert not any(row.restricted for row in await store.monitors_to_run(db))
        actions = [row.action for row in (await db.execute(select(a.audit_log).where(
            a.audit_log.c.org_id == owner.org_id))).all()]
    assert actions.count("restricted") == actions.count("restriction_lifted") == 1
    after = await held_for(database_url, owner.org_id)
    assert after["monitors"] == before["monitors"] and after["messages"] == before["messages"]


def test_erasure_covers_every_exported_table() -> None:
    # An organisation's erasure walks export.SCOPES: a table with no scope there would be
    # left behind (the export test makes every table choose one or say why it is kept).
    assert set(erasure.KEPT) <= set(export.SCOPES)
    assert set(erasure.BY_USER) <= set(export.SCOPES)
    for name in export.NOT_EXPORTED:
        table = t.metadata.tables[name]
        assert not any(fk.column.table.name == "organizations" for fk in table.foreign_keys
                       if fk.ondelete != "CASCADE"), name


async def test_the_owner_switches_to_free_and_the_billing_dates_are_forgotten(
        client: httpx.AsyncClient, stranger: Person, viewer: Person, database_url: str) -> None:
    # The stranger signed up, so owns an organisation on a trial.
    o = t.organizations.c
    assert (await client.post("/api/v1/account/plan", headers=viewer.headers,
                              json={"plan": "free"})).status_code == 403
    refused = await client.post("/api/v1/account/plan", headers=stranger.headers,
                                json={"plan": "paid"})
    assert refused.status_code == 422 and "plan" in refused.text
    async with seed.database(database_url) as db:
        before = (await db.execute(select(o.plan, o.trial_ends_at).where(
            o.id == stranger.org_id))).one()
    assert before.plan == "trial" and before.trial_ends_at is not None
    answer = await client.post("/api/v1/account/plan", headers=stranger.headers,
                               json={"plan": "free"})
    assert answer.status_code == 200, answer.text
    async with seed.database(database_url) as db:
        after = (await db.execute(select(o.plan, o.trial_ends_at, o.paid_until).where(
            o.id == stranger.org_id))).one()
        [detail] = (await db.execute(select(a.audit_log.c.detail).where(
            a.audit_log.c.action == "plan_changed"))).scalars().all()
    assert tuple(after) == ("free", None, None) and detail["by"] == "owner"
