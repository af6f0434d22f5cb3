"""Sealed addresses found by their digest: a point's address is unique per account and
kind but free in another account, a page keeps one subscription per address, digests
outlive a rotation that drops the old key, and migration 0016 seals the addresses stored
in the clear (also of an account with no data key yet) and digests them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.notify import consent, contacts
from dozor.privacy import keys, rotation
from dozor.store import notify_tables as n
from dozor.store import status_tables as st
from dozor.store.db import create_engine
from dozor.store.migrate import upgrade
from tests.api.conftest import Mailbox, Person, mailbox
from tests.api.test_status_public import publish
from tests.notify.conftest import ORG, add_contact
from tests.privacy.test_encryption import empty_database, file_settings
from tests.web.test_status_subscriptions import subscribe

__all__ = ["mailbox"]


async def add_point(client: httpx.AsyncClient, person: Person, address: str) -> httpx.Response:
    contact = (await client.post("/api/v1/contacts", headers=person.headers,
                                 json={"name": f"Ala at {address}"})).json()
    return await client.post(f"/api/v1/contacts/{contact['id']}/points", headers=person.headers,
                             json={"kind": "sms", "address": address})


async def raw_points(database_url: str) -> list[Any]:
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        rows = (await connection.execute(text(
            "SELECT org_id, address, address_digest FROM contact_points WHERE kind = 'sms' "
            "ORDER BY id"))).all()
    await engine.dispose()
    return list(rows)


async def test_an_address_is_refused_twice_in_one_account_and_free_in_another(
        client: httpx.AsyncClient, owner: Person, stranger: Person,
        database_url: str) -> None:
    assert (await add_point(client, owner, "+48 600 100 200")).status_code == 201
    again = await add_point(client, owner, "+48600100200")  # the same, written otherwise
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "address"
    assert (await add_point(client, stranger, "+48600100200")).status_code == 201
    first, second = await raw_points(database_url)
    assert (first.org_id, second.org_id) == (owner.org_id, stranger.org_id)
    assert first.address_digest == second.address_digest  # equal addresses: equal digests
    assert len(first.address_digest) == 64 and "600100200" not in first.address_digest
    assert first.address.startswith(f"p1:{owner.org_id}:") and first.address != second.address


async def test_subscribing_an_address_twice_keeps_one_subscription(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox, database_url: str) -> None:
    await publish(client, owner)
    for address in ("ala@example.com", "ala@example.com", "Ala@Example.COM"):
        assert (await subscribe(client, address)).status_code == 303
    engine = create_engine(database_url)
    s = st.status_subscribers.c
    async with engine.connect() as connection:
        rows = (await connection.execute(select(s.email, s.email_digest))).all()
        wanted = await keys.digest_of(connection, "email", "ala@example.com")
    await engine.dispose()
    assert [tuple(row) for row in rows] == [("ala@example.com", wanted)]


async def test_digests_find_addresses_after_a_rotation_that_drops_the_old_key(
        engine: AsyncEngine, tmp_path: Path, keyring: keys.Keyring) -> None:
    [point] = await add_contact(engine, "ala", [{"kind": "sms", "address": "+48600100200"}])
    async with engine.connect() as connection:
        before = await keys.digest_of(connection, "sms", "+48600100200")
    settings = file_settings(tmp_path, keyring)
    done = await rotation.rotate(engine, settings, drop_old=True, settle=0)
    assert done.dropped == 1 and done.resealed["instance_keys.wrapped"] == 1
    keys.install(keys.Keyring(keys.read_key_file(keys.key_file(settings)), "the new key"))
    keys.forget_all()
    async with engine.begin() as connection:
        assert await keys.digest_of(connection, "sms", "+48600100200") == before
        assert await contacts.find_point(connection, ORG, "sms", "+48600100200") == point
        await keys.load_data_keys(connection)  # opting out reads the points
        assert await consent.opt_out(connection, "sms", "+48600100200", "keyword",
                                     datetime.now(UTC)) == 1


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql",
                                                            marks=pytest.mark.postgres)])
def test_the_migration_seals_and_digests_addresses_stored_in_the_clear(
        backend: str, tmp_path: Path) -> None:
    with empty_database(backend, tmp_path) as url:
        upgrade(url, "0015")
        asyncio.run(_plain_rows(url))
        upgrade(url)
        asyncio.run(_check_sealed(url))


async def _plain_rows(url: str) -> None:
    """Points of account 1 (which has a data key) and of account 2 (made after 0015, with
    none yet), and a subscriber of account 2's page, all in the clear."""
    engine = create_engine(url)
    at = {"at": datetime.now(UTC)}
    async with engine.begin() as c:
        await c.execute(text("INSERT INTO organizations (id, slug, name, plan, created_at, "
                             "sms_credits) VALUES (2, 'two', 'Two', 'free', :at, 50)"), at)
        for org in (1, 2):
            await c.execute(text(
                "INSERT INTO contacts (id, org_id, name, timezone, language, is_owner, "
                f"version, created_at) VALUES ({org}, {org}, 'Ala', 'UTC', 'en', false, 1, "
                ":at)"), at)
            for number, (kind, address) in enumerate(
                    [("sms", "+48600100200"), ("email", "ala@example.com")]):
                await c.execute(text(
                    "INSERT INTO contact_points (org_id, contact_id, kind, address, priority, "
                    "events, outside_hours, escalation_minutes, unsubscribe_token, version, "
                    f"created_at) VALUES ({org}, {org}, :kind, :address, 0, '[\"down\"]', "
                    f"'hold', 0, 'u{org}{number}', 1, :at)"),
                    {"kind": kind, "address": address, **at})
        await c.execute(text(
            "INSERT INTO status_pages (id, org_id, slug, title, description, published, "
            "version, created_at, updated_at) VALUES (5, 2, 'two', 'Two', '', true, 1, :at, "
            ":at)"), at)
        await c.execute(text(
            "INSERT INTO status_subscribers (page_id, email, language, requested_at, "
            "unsubscribe_token, created_at) VALUES (5, 'bob@example.com', 'en', :at, 'su', "
            ":at)"), at)
    await engine.dispose()


async def _check_sealed(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as c:
        await keys.load_data_keys(c)
        raw = (await c.execute(text("SELECT org_id, address FROM contact_points"))).all()
        assert all(v.startswith(f"p1:{org}:") for org, v in raw) and len(raw) == 4
        subscriber = (await c.execute(text("SELECT email FROM status_subscribers"))).scalar()
        assert subscriber.startswith("p1:2:")
        p, s = n.contact_points.c, st.status_subscribers.c
        assert (await c.execute(select(s.email))).scalar() == "bob@example.com"
        assert (await c.execute(select(s.email_digest))).scalar() == keys.digest(
            "email", "bob@example.com")
        for org in (1, 2):
            assert await contacts.find_point(c, org, "email", "ala@example.com") is not None
        addresses = (await c.execute(select(p.address).order_by(p.id))).scalars().all()
        assert addresses == ["+48600100200", "ala@example.com"] * 2
        count = select(func.count()).select_from(n.contact_points)
        assert (await c.execute(count)).scalar() == 4
        assert await consent.opt_out(c, "sms", "+48600100200", "keyword",
                                     datetime.now(UTC)) == 2  # in both accounts
    await engine.dispose()
