"""API tests talk to the real application over ASGI (no socket, no engine running) on both
databases. Three people are ready: an owner, a viewer in the owner's organisation, and a
stranger with an organisation of their own. ``mailbox`` adds a real SMTP server as the
installation's email channel, with the app's own dispatcher sending to it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import insert, select

from dozor.api import ratelimit
from dozor.app import create_app
from dozor.settings import Settings
from dozor.store import account_tables as a
from dozor.store.db import create_engine
from tests.notify.conftest import add_email_channel
from tests.servers.smtp import SmtpServer

PASSWORD = "correct horse battery"
PUBLIC_URL = "http://dozor.test"


@dataclass
class Person:
    email: str
    token: str  # a write API token
    org_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(autouse=True)
def fresh_limits_and_cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every API test, whichever way it runs the app."""
    ratelimit.clear_all()  # fresh limits per test: they are process-wide by design
    # Argon2 as configured costs half a second a hash here; tests hash hundreds.
    monkeypatch.setattr("dozor.api.security._hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings.model_validate({"data_dir": tmp_path, "database_url": database_url,
                                        "signup": True, "public_url": PUBLIC_URL})
    app = create_app(settings)
    yield app
    await app.state.database.dispose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
        yield http


@dataclass
class Mailbox:
    """What the installation's email channel delivered to a local SMTP server."""

    smtp: SmtpServer

    def to(self, address: str, subject: str = "") -> list[EmailMessage]:
        """Mails to ``address`` whose subject has ``subject`` in it, oldest first."""
        mails = [r.message for r in self.smtp.received if address in r.rcpt_tos]
        return [mail for mail in mails if subject in str(mail["Subject"])]

    async def wait(self, address: str, subject: str = "", count: int = 1,
                   within: float = 10.0) -> list[EmailMessage]:
        """Those mails once there are ``count`` of them (the dispatcher runs in the
        background)."""
        async with asyncio.timeout(within):
            while len(self.to(address, subject)) < count:
                await asyncio.sleep(0.05)
        return self.to(address, subject)

    async def token(self, address: str, subject: str, count: int = 1) -> str:
        """The one-time token in the ``count``-th such mail."""
        text = body((await self.wait(address, subject, count))[count - 1])
        found = re.search(r"^dze_[\w-]+", text, re.MULTILINE)
        assert found is not None, text
        return found.group()

    async def code(self, address: str, count: int = 1) -> str:
        """The code in the ``count``-th confirmation mail to ``address``."""
        mail = (await self.wait(address, "Dozor code", count))[count - 1]
        found = re.search(r"\b\d{6}\b", body(mail))
        assert found is not None, body(mail)
        return found.group()


RESET = "Reset your Dozor password"


def body(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


@pytest.fixture
async def mailbox(app: FastAPI, database_url: str) -> AsyncIterator[Mailbox]:
    async with SmtpServer() as smtp:
        engine = create_engine(database_url)
        await add_email_channel(engine, smtp.port)
        await engine.dispose()
        await app.state.notify.start()  # what `dozor serve` starts: channels, dispatcher
        try:
            yield Mailbox(smtp)
        finally:
            await app.state.notify.stop()


async def sign_up(client: httpx.AsyncClient, email: str, name: str) -> Person:
    created = await client.post("/api/v1/signup", json={
        "email": email, "password": PASSWORD, "name": name})
    assert created.status_code == 201, created.text
    session = await log_in(client, email)
    token = await client.post("/api/v1/tokens", json={"name": "tests"},
                              headers=bearer(session))
    assert token.status_code == 201, token.text
    return Person(email, token.json()["token"], created.json()["organisation_id"])


async def sub_account(client: httpx.AsyncClient, owner: Person, email: str,
                      monitor_tags: list[str], role: str = "member") -> Person:
    """Someone who signed up, then was added to the owner's organisation as a sub-account
    limited to ``monitor_tags``; their token (read-only for a viewer) acts there."""
    await sign_up(client, email, email.partition("@")[0].title())
    added = await client.post("/api/v1/members", headers=owner.headers, json={
        "email": email, "role": role, "monitor_tags": monitor_tags})
    assert added.status_code == 201, added.text
    session = await log_in(client, email, organisation_id=owner.org_id)
    scope = "read" if role == "viewer" else "write"
    token = await client.post("/api/v1/tokens", json={"name": "sub", "scope": scope},
                              headers=bearer(session))
    assert token.status_code == 201, token.text
    return Person(email, token.json()["token"], owner.org_id)


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD,
                 **extra: Any) -> str:
    """A session token (the cookie the answer sets is dropped: tests send headers)."""
    session = await client.post("/api/v1/sessions", json={"email": email,
                                                          "password": password, **extra})
    assert session.status_code == 201, session.text
    client.cookies.clear()
    return str(session.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def audit_actions(database_url: str, org_id: int | None = None) -> list[tuple[Any, ...]]:
    """(action, user_id, target) of the audit log, oldest first."""
    engine = create_engine(database_url)
    log = a.audit_log.c
    query = select(log.action, log.user_id, log.target).order_by(log.id)
    if org_id is not None:
        query = query.where(log.org_id == org_id)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    await engine.dispose()
    return [tuple(row) for row in rows]


async def listed_ids(client: httpx.AsyncClient, person: Person, url: str) -> list[int]:
    """The ids of a list's first page, as ``person`` reads it."""
    answer = await client.get(url, headers=person.headers)
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Person:
    return await sign_up(client, "owner@example.com", "Olga Owner")


@pytest.fixture
async def stranger(client: httpx.AsyncClient, owner: Person) -> Person:
    return await sign_up(client, "stranger@example.com", "Stan Stranger")


@pytest.fixture
async def viewer(client: httpx.AsyncClient, owner: Person, stranger: Person,
                 database_url: str) -> Person:
    """Signs up (own organisation), then is made a viewer of the owner's instead."""
    person = await sign_up(client, "viewer@example.com", "Vera Viewer")
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        m = a.memberships.c
        await connection.execute(a.memberships.delete().where(m.org_id == person.org_id))
        await connection.execute(a.api_tokens.delete().where(a.api_tokens.c.user_id == 3))
        await connection.execute(insert(a.memberships).values(
            user_id=3, org_id=owner.org_id, role="viewer", created_at=datetime.now(UTC)))
    await engine.dispose()
    session = await log_in(client, person.email)
    token = await client.post("/api/v1/tokens", json={"name": "read", "scope": "read"},
                              headers=bearer(session))
    assert token.status_code == 201, token.text
    return Person(person.email, token.json()["token"], owner.org_id)
