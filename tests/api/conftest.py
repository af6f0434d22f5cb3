"""API tests talk to the real application over ASGI (no socket, no engine running) on both
databases. Three people are ready: an owner, a viewer in the owner's organisation, and a
stranger with an organisation of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert

from dozor.api.ratelimit import RateLimit
from dozor.app import create_app
from dozor.settings import Settings
from dozor.store import account_tables as a
from dozor.store.db import create_engine

PASSWORD = "correct horse battery"


@dataclass
class Person:
    email: str
    token: str  # a write API token
    org_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def client(database_url: str, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    # Fresh limits per test: they are process-wide by design.
    monkeypatch.setattr("dozor.api.accounts.LOGIN_BY_IP", RateLimit(30, 300.0))
    monkeypatch.setattr("dozor.api.accounts.LOGIN_BY_EMAIL", RateLimit(10, 900.0))
    settings = Settings.model_validate({"data_dir": tmp_path, "database_url": database_url,
                                        "signup": True})
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dozor.test") as http:
        yield http
    await app.state.database.dispose()


async def sign_up(client: httpx.AsyncClient, email: str, name: str) -> Person:
    created = await client.post("/api/v1/signup", json={
        "email": email, "password": PASSWORD, "name": name})
    assert created.status_code == 201, created.text
    session = await client.post("/api/v1/sessions", json={"email": email,
                                                          "password": PASSWORD})
    assert session.status_code == 201, session.text
    client.cookies.clear()
    token = await client.post("/api/v1/tokens", json={"name": "tests"},
                              headers={"Authorization": f"Bearer {session.json()['token']}"})
    assert token.status_code == 201, token.text
    return Person(email, token.json()["token"], created.json()["organisation_id"])


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
    session = await client.post("/api/v1/sessions", json={"email": person.email,
                                                          "password": PASSWORD})
    client.cookies.clear()
    token = await client.post("/api/v1/tokens", json={"name": "read", "scope": "read"},
                              headers={"Authorization": f"Bearer {session.json()['token']}"})
    assert token.status_code == 201, token.text
    return Person(person.email, token.json()["token"], owner.org_id)
