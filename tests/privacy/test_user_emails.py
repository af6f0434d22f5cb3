"""Users' addresses are sealed with the instance key and found by their digest: log-in and
sign-up find them whatever their case, the database keeps one account per address, a
rotation that drops the old key leaves them readable and found, and migration 0022 seals
and digests the addresses stored in the clear (and its downgrade opens them again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from dozor.api.security import hash_password
from dozor.app import create_app
from dozor.privacy import keys, rotation
from dozor.settings import Settings
from dozor.store import account_tables as a
from dozor.store import accounts
from dozor.store.db import create_engine
from dozor.store.migrate import alembic_config, upgrade
from tests.api import seed
from tests.api.conftest import PASSWORD, PUBLIC_URL, Person
from tests.privacy.test_encryption import empty_database, file_settings


async def stored_users(database_url: str) -> list[Any]:
    """(id, email, email_digest) of every user as stored, not through the column's type."""
    async with seed.database(database_url) as db:
        return list((await db.execute(text(
            "SELECT id, email, email_digest FROM users ORDER BY id"))).all())


async def log_in(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/api/v1/sessions", json={"email": email, "password": PASSWORD})


async def test_an_address_is_stored_sealed_and_logs_in_in_any_case(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    [row] = await stored_users(database_url)
    assert row.email.startswith(keys.SECRET) and "owner" not in row.email.lower()
    async with seed.database(database_url) as db:
        assert row.email_digest == await keys.digest_of(db, "email", "owner@example.com")
        assert (await accounts.user_by_email(db, "owner@example.com")).email == owner.email
    answer = await log_in(client, "  Owner@Example.COM ")
    assert answer.status_code == 201, answer.text
    assert answer.json()["user"]["email"] == "owner@example.com"  # opened to be shown


async def test_an_address_in_another_case_is_refused_at_sign_up_and_by_the_database(
        client: httpx.AsyncClient, owner: Person, database_url: str) -> None:
    again = await client.post("/api/v1/signup", json={
        "email": "OWNER@Example.com", "password": PASSWORD, "name": "Copy"})
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "email"
    assert len(await stored_users(database_url)) == 1
    with pytest.raises(IntegrityError):  # the digest is unique, not the sealed address
        async with seed.database(database_url) as db:
            await db.execute(insert(a.users).values(
                **await accounts.email_fields(db, "owner@example.com"), name="Copy",
                password_hash="x", failed_logins=0, created_at=datetime.now(UTC)))


async def test_addresses_are_resealed_by_a_rotation_and_still_log_in(
        client: httpx.AsyncClient, owner: Person, database_url: str, tmp_path: Path,
        keyring: keys.Keyring) -> None:
    [before] = await stored_users(database_url)
    engine = create_engine(database_url)
    try:
        done = await rotation.rotate(engine, file_settings(tmp_path, keyring),
                                     drop_old=True, settle=0)
    finally:
        await engine.dispose()
    assert done.resealed["users.email"] == 1 and done.dropped == 1
    [after] = await stored_users(database_url)
    assert after.email_digest == before.email_digest  # digests never change
    assert keys.current().open(after.email) == "owner@example.com"
    with pytest.raises(keys.KeyUnavailable):
        keyring.open(after.email)  # only the new key opens it
    assert (await log_in(client, owner.email)).status_code == 201


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql",
                                                            marks=pytest.mark.postgres)])
def test_the_migration_seals_and_digests_addresses_that_then_log_in(
        backend: str, tmp_path: Path) -> None:
    with empty_database(backend, tmp_path) as url:
        upgrade(url, "0021")
        asyncio.run(_plain_users(url))
        upgrade(url)
        asyncio.run(_check_sealed(url, tmp_path))
        command.downgrade(alembic_config(url), "0021")
        asyncio.run(_check_plain(url))
        upgrade(url)  # and back: sealed once more, still found
        asyncio.run(_check_sealed(url, tmp_path))


async def _plain_users(url: str) -> None:
    """Two users stored in the clear: one with a password and an organisation, one
    invited (no password yet)."""
    at = {"at": datetime.now(UTC)}
    async with seed.database(url) as db:
        for user_id, email, password in ((7, "ala@example.com", hash_password(PASSWORD)),
                                         (8, "bob@example.com", "!")):
            await db.execute(text(
                "INSERT INTO users (id, email, name, password_hash, failed_logins, "
                "created_at) VALUES (:id, :email, 'Ala', :password, 0, :at)"),
                {"id": user_id, "email": email, "password": password, **at})
        await db.execute(text("INSERT INTO memberships (user_id, org_id, role, created_at) "
                              "VALUES (7, 1, 'owner', :at)"), at)


async def _check_sealed(url: str, tmp_path: Path) -> None:
    rows = await stored_users(url)
    assert [r.id for r in rows] == [7, 8]
    assert all(r.email.startswith(keys.SECRET) and "example" not in r.email for r in rows)
    async with seed.database(url) as db:
        assert (await db.execute(text("SELECT count(*) FROM memberships"))).scalar() == 1
        for row, address in zip(rows, ("ala@example.com", "bob@example.com"), strict=True):
            assert row.email_digest == await keys.digest_of(db, "email", address)
            assert (await accounts.user_by_email(db, address)).id == row.id
    async with app_client(url, tmp_path) as client:
        answer = await log_in(client, "Ala@Example.com")
        assert answer.status_code == 201, answer.text
        assert answer.json()["user"]["email"] == "ala@example.com"
        again = await client.post("/api/v1/signup", json={
            "email": "BOB@example.com", "password": PASSWORD, "name": "Bob"})
        assert again.status_code == 409, again.text


async def _check_plain(url: str) -> None:
    async with seed.database(url) as db:
        rows = (await db.execute(text("SELECT id, email FROM users ORDER BY id"))).all()
        columns = (await db.execute(text("SELECT * FROM users"))).keys()
    assert [tuple(r) for r in rows] == [(7, "ala@example.com"), (8, "bob@example.com")]
    assert "email_digest" not in columns


@asynccontextmanager
async def app_client(url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.model_validate({"data_dir": tmp_path, "database_url": url,
                                        "signup": True, "public_url": PUBLIC_URL})
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=PUBLIC_URL) as client:
            yield client
    finally:
        await app.state.database.dispose()
