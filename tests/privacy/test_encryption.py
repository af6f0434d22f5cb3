"""Encryption at rest: after real flows no column of a sealing type holds plain text (the
columns are found from the tables, so a new one is covered; sealed addresses have their
digests), personal columns refuse a
plain string, rotation keeps everything readable (also when cut short and run again),
a wrong or missing key is a clear error, and the key file is made once, private."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import stat
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import column, insert, select, table, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.privacy import export, keys, rotation
from dozor.settings import Settings, SettingsError
from dozor.store import account_tables as a
from dozor.store import notify_tables as n
from dozor.store import tables as t
from dozor.store.db import create_engine
from dozor.store.migrate import upgrade
from dozor.store.sealed import SEALED_TYPES
from tests.api import seed
from tests.api.conftest import Mailbox, Person, body, log_in, mailbox
from tests.api.test_status_public import publish
from tests.api.test_two_factor import turn_on
from tests.conftest import _pg_admin, _pg_dsn
from tests.privacy.test_export import populate
from tests.web.test_status_subscriptions import confirm_link, subscribe

__all__ = ["mailbox"]
VISITOR = "visitor@example.com"
SECRETS = ["acme-webhook-secret", "acme-sms-token", "hunter2-smtp", "Browser/1.0",
           "127.0.0.1", VISITOR, "owner@example.com", "https://acme.example/hook"]


def sealed_columns() -> list[tuple[str, str]]:
    return [(tbl.name, c.name) for tbl in t.metadata.sorted_tables for c in tbl.columns
            if isinstance(c.type, SEALED_TYPES)]


async def stored(database_url: str) -> dict[tuple[str, str], list[str]]:
    """What each sealed column holds as stored (not through its type)."""
    found = {}
    async with seed.database(database_url) as db:
        for name, col in sealed_columns():
            raw = table(name, column(col))
            found[name, col] = [str(v) for v in (await db.execute(
                select(raw.c[col]).where(raw.c[col].is_not(None)))).scalars()]
    return found


async def test_after_real_flows_no_sealed_column_holds_plain_text(
        client: httpx.AsyncClient, owner: Person, mailbox: Mailbox,
        database_url: str) -> None:
    await populate(client, owner, database_url, "acme")  # a webhook point with its secret
    async with seed.database(database_url) as db:
        await seed.channel(db, "sms", {"token": "acme-sms-token", "password": "hunter2-smtp"})
    mail = body((await mailbox.wait(owner.email, "Dozor code"))[0])  # the sign-up's
    link = re.search(r"https?://[^/\s]+(/confirm/\S+)", mail)
    assert link is not None, mail
    confirmed = await client.post(link.group(1), headers={"User-Agent": "Browser/1.0"})
    assert confirmed.status_code == 200, confirmed.text  # a consent grant, with the agent
    totp, _ = await turn_on(client, owner)
    await log_in(client, owner.email, code=totp.now())  # a session with address and agent
    await publish(client, owner)
    await subscribe(client, VISITOR)
    link = await confirm_link(mailbox, VISITOR)
    assert (await client.post(link, headers={"User-Agent": "Browser/1.0"})).status_code == 200
    reset = await client.post("/api/v1/password-reset", json={"email": owner.email})
    assert reset.status_code == 202  # an account email: a message to an address
    await mailbox.wait(owner.email, "password")

    held = await stored(database_url)
    assert [where for where, values in held.items() if not values] == []  # all exercised
    assert {("contact_points", "address"), ("status_subscribers", "email"),
            ("users", "email")} <= set(held)
    for name, col in (("contact_points", "address_digest"),
                      ("status_subscribers", "email_digest"), ("users", "email_digest")):
        async with seed.database(database_url) as db:
            digests = (await db.execute(select(table(name, column(col)).c[col]))).scalars()
            assert all(re.fullmatch("[0-9a-f]{64}", d) for d in digests), (name, col)
    for (name, col), values in held.items():
        for value in values:
            assert value.startswith((keys.SECRET, keys.PERSONAL)), (name, col, value)
            assert not any(s.lower() in value.lower() for s in SECRETS), (name, col)
    archive = io.BytesIO()
    async with seed.database(database_url) as db:
        async for piece in export.archive(db, owner.org_id):
            archive.write(piece)
    with zipfile.ZipFile(archive) as files:
        everything = "".join(files.read(f).decode() for f in files.namelist())
    assert "https://acme.example/hook" in everything  # the ledger's address, opened
    assert '"owner@example.com"' in everything  # the user's address, opened
    assert "acme-webhook-secret" not in everything  # a secret, still redacted


async def test_a_personal_column_refuses_a_plain_string(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        with pytest.raises(StatementError, match=r"keys.Personal\(org_id, text\)"):
            await connection.execute(insert(a.audit_log).values(
                org_id=1, action="login", at=datetime.now(UTC), ip="203.0.113.7"))


async def add_secrets(engine: AsyncEngine, rows: int = 3) -> None:
    async with engine.begin() as connection:
        for i in range(rows):
            await seed.channel(connection, f"sms{i}", {"password": f"pw{i}"})
        await connection.execute(insert(a.audit_log).values(
            org_id=1, action="login", at=datetime.now(UTC),
            ip=await keys.personal(connection, 1, "198.51.100.1")))


async def readable(engine: AsyncEngine) -> tuple[list[object], list[object]]:
    async with engine.connect() as connection:
        configs = list((await connection.execute(
            select(n.notify_channels.c.config).order_by(n.notify_channels.c.id))).scalars())
        ips = list((await connection.execute(select(a.audit_log.c.ip))).scalars())
    return configs, ips


def file_settings(tmp_path: Path, ring: keys.Keyring) -> Settings:
    """Settings whose key file holds the tests' key (which wrapped the template's keys)."""
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    keys.write_key_file(keys.key_file(settings), ring.keys)
    return settings


async def test_values_stay_readable_through_a_rotation_and_dropping_the_old_key(
        engine: AsyncEngine, tmp_path: Path, keyring: keys.Keyring) -> None:
    settings = file_settings(tmp_path, keyring)
    await add_secrets(engine)
    before = await readable(engine)
    done = await rotation.rotate(engine, settings, settle=0)
    assert len(keys.read_key_file(keys.key_file(settings))) == 2 and not done.resumed
    assert done.resealed["notify_channels.config"] == 3 and done.resealed["data_keys.wrapped"]
    keys.forget_all()
    async with engine.connect() as connection:
        await keys.load_data_keys(connection)
    assert await readable(engine) == before
    dropped = await rotation.rotate(engine, settings, drop_old=True, settle=0)
    assert dropped.dropped == 2
    only = keys.read_key_file(keys.key_file(settings))
    assert only == keys.current().keys and keyring.keys[0] not in only
    keys.install(keys.Keyring(only, "the new key alone"))
    keys.forget_all()
    async with engine.connect() as connection:
        await keys.load_data_keys(connection)
    assert await readable(engine) == before


async def test_a_rotation_cut_short_is_finished_by_running_it_again(
        engine: AsyncEngine, tmp_path: Path, keyring: keys.Keyring,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = file_settings(tmp_path, keyring)
    await add_secrets(engine, rows=5)
    before = await readable(engine)
    monkeypatch.setattr(rotation, "BATCH", 2)
    ring, resumed = await rotation._new_primary(engine, settings, keys.load(settings))
    keys.install(ring)
    partial = await rotation.reseal(engine, ring, stop_after=1)  # killed after one batch
    assert sum(partial.values()) == 2
    done = await rotation.rotate(engine, settings, settle=0)
    assert done.resumed and len(keys.current().keys) == 2  # no third key
    assert await rotation.reseal(engine, keys.current()) == {}  # nothing left behind
    assert await readable(engine) == before


async def test_a_wrong_or_missing_key_is_a_clear_error_naming_the_setting(
        engine: AsyncEngine) -> None:
    await add_secrets(engine, rows=1)
    keys.install(keys.Keyring([Fernet.generate_key()], keys.SETTING))
    with pytest.raises(keys.KeyUnavailable, match="DOZOR_SECRET_KEY"):
        await readable(engine)
    keys.install(None)
    with pytest.raises(keys.KeyUnavailable, match="DOZOR_SECRET_KEY"):
        await readable(engine)


async def test_a_personal_value_of_an_unknown_data_key_is_a_clear_error(
        engine: AsyncEngine) -> None:
    await add_secrets(engine, rows=0)
    keys.forget(1)  # as an erasure does
    with pytest.raises(keys.KeyUnavailable, match="no data key for organisation 1"):
        await readable(engine)


def test_the_key_file_is_made_private_once_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = keys.load(settings)
    path = tmp_path / "instance.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.load(settings).keys == first.keys
    again = keys.Keyring(keys.read_key_file(path), "read")
    assert again.open(first.seal("x")) == "x"


def test_a_key_from_the_setting_is_used_and_a_bad_one_refused(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings.load({"DOZOR_SECRET_KEY": key, "DOZOR_DATA_DIR": str(tmp_path)})
    assert keys.load(settings).keys == [key.encode()]
    assert not (tmp_path / "instance.key").exists()
    with pytest.raises(SettingsError, match="DOZOR_SECRET_KEY"):
        Settings.load({"DOZOR_SECRET_KEY": "not-a-key"})


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql",
                                                            marks=pytest.mark.postgres)])
def test_the_migration_seals_what_was_stored_in_the_clear(backend: str,
                                                          tmp_path: Path) -> None:
    with empty_database(backend, tmp_path) as url:
        upgrade(url, "0014")
        asyncio.run(_plain_rows(url))
        upgrade(url)
        asyncio.run(_check_sealed(url))


@contextlib.contextmanager
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database of ``backend`` (to migrate step by step)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"dozor_mig_{tmp_path.name[-8:].lower().replace('-', '_')}"
    try:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    except OSError as error:
        pytest.skip(f"PostgreSQL: {error}")
    try:
        yield _pg_dsn(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _plain_rows(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as c:
        await c.execute(text(
            "INSERT INTO users (id, email, name, password_hash, failed_logins, created_at, "
            "totp_secret) VALUES (7, 'a@example.com', 'A', 'x', 0, :at, 'JBSWY3DPEHPK3PXP')"),
            {"at": datetime.now(UTC)})
        await c.execute(text("INSERT INTO memberships (user_id, org_id, role, created_at) "
                             "VALUES (7, 1, 'owner', :at)"), {"at": datetime.now(UTC)})
        await c.execute(text(
            "INSERT INTO sessions (token_hash, user_id, org_id, created_at, expires_at, ip, "
            "user_agent) VALUES ('h', 7, 1, :at, :at, '203.0.113.9', 'Browser/1.0')"),
            {"at": datetime.now(UTC)})
        await c.execute(text(
            "INSERT INTO notify_channels (id, name, kind, config, priority, enabled, "
            "callback_token, created_at) VALUES (1, 'sms', 'smsapi', :config, 0, true, 'cb', "
            ":at)"), {"config": json.dumps({"token": "acme-sms-token"}), "at": datetime.now(UTC)})
        await c.execute(text("INSERT INTO audit_log (org_id, action, at, ip) "
                             "VALUES (NULL, 'login_failed', :at, '127.0.0.1')"),
                        {"at": datetime.now(UTC)})
    await engine.dispose()


async def _check_sealed(url: str) -> None:
    engine = create_engine(url)
    async with engine.connect() as c:
        await keys.load_data_keys(c)
        memberships = (await c.execute(text("SELECT count(*) FROM memberships"))).scalar()
        assert memberships == 1  # copying a table on SQLite deleted nothing referring to it
        raw = (await c.execute(text("SELECT ip, user_agent FROM sessions"))).one()
        assert all(v.startswith("p1:1:") for v in raw)
        session = (await c.execute(select(a.sessions.c.ip, a.sessions.c.user_agent))).one()
        assert tuple(session) == ("203.0.113.9", "Browser/1.0")
        assert (await c.execute(select(a.users.c.totp_secret))).scalar() == "JBSWY3DPEHPK3PXP"
        assert (await c.execute(select(n.notify_channels.c.config))).scalar() == {
            "token": "acme-sms-token"}
        assert (await c.execute(select(a.audit_log.c.ip))).scalar() == "127.0.0.1"
        stored_ip = (await c.execute(text("SELECT ip FROM audit_log"))).scalar()
        assert stored_ip.startswith("s1:")
    await engine.dispose()
