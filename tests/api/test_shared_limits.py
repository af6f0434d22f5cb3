"""Rate limits on PostgreSQL are counted in the database, so several server nodes share
each limit (``api.ratelimit.SharedLimits``). Two apps on one database stand for two nodes;
as they run in one process here, each request first forgets this process's in-memory
hits (``ratelimit.clear_all``), which another process would never have seen. SQLite has
one server, and keeps counting in memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from dozor.api import ratelimit
from dozor.app import create_app
from dozor.privacy import keys, retention
from dozor.settings import Settings
from dozor.store import account_tables as a
from dozor.store.db import create_engine
from tests.api.conftest import PASSWORD, PUBLIC_URL, bearer, log_in, sign_up
from tests.conftest import fresh_database

STRANGER = "nobody@example.com"
WRONG = {"email": STRANGER, "password": "wrong password"}


def settings_of(database_url: str, data_dir: Path) -> Settings:
    return Settings.model_validate({"data_dir": data_dir, "database_url": database_url,
                                    "signup": True, "public_url": PUBLIC_URL})


@pytest.fixture
async def nodes(postgres_url: str, tmp_path: Path) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Clients of two apps on one PostgreSQL database."""
    settings = settings_of(postgres_url, tmp_path)
    apps = [create_app(settings), create_app(settings)]
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL)
               for app in apps]
    yield clients
    for client, app in zip(clients, apps, strict=True):
        await client.aclose()
        await app.state.database.dispose()


async def post_on(node: httpx.AsyncClient, url: str, **options: Any) -> httpx.Response:
    """A request to ``node``, with no hit in this process's memory (as on another node)."""
    ratelimit.clear_all()
    return await node.post(url, **options)


@pytest.mark.postgres
async def test_log_ins_alternating_between_two_nodes_share_one_limit(
        nodes: list[httpx.AsyncClient]) -> None:
    for attempt in range(10):  # ten per address in 15 minutes, on both nodes together
        answer = await post_on(nodes[attempt % 2], "/api/v1/sessions", json=WRONG)
        assert answer.status_code == 401, answer.text
    for node in nodes:
        refused = await post_on(node, "/api/v1/sessions", json=WRONG)
        assert refused.status_code == 429, refused.text
        # The first attempt counts until 15 minutes after it.
        assert 890 <= int(refused.headers["Retry-After"]) <= 901


@pytest.mark.postgres
async def test_log_ins_at_once_on_two_nodes_are_counted_exactly(
        nodes: list[httpx.AsyncClient]) -> None:
    # Each check locks its key first: without the lock 16 of these got through here.
    async def attempt(index: int) -> int:
        return (await nodes[index % 2].post("/api/v1/sessions", json=WRONG)).status_code
    answers = await asyncio.gather(*(attempt(index) for index in range(24)))
    assert sorted(answers) == [401] * 10 + [429] * 14


@pytest.mark.postgres
async def test_a_hit_counts_though_the_request_rolls_back(
        nodes: list[httpx.AsyncClient]) -> None:
    await sign_up(nodes[0], "owner@example.com", "Olga Owner")
    session = bearer(await log_in(nodes[0], "owner@example.com"))
    wrong = {"current_password": "not it", "new_password": "a new long password"}
    for attempt in range(10):  # a wrong password is a 422: the request's transaction rolls back
        answer = await post_on(nodes[attempt % 2], "/api/v1/account/password", json=wrong,
                               headers=session)
        assert answer.status_code == 422, answer.text
    right = {"current_password": PASSWORD, "new_password": "a new long password"}
    refused = await post_on(nodes[1], "/api/v1/account/password", json=right,
                            headers=session)
    assert refused.status_code == 429 and "Retry-After" in refused.headers


@pytest.mark.postgres
async def test_the_hits_hold_keyed_digests_never_the_address_or_ip(
        nodes: list[httpx.AsyncClient], postgres_url: str) -> None:
    await post_on(nodes[0], "/api/v1/sessions", json={"email": STRANGER, "password": "x"})
    engine = create_engine(postgres_url)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(a.rate_limit_hits))).mappings().all()
        address = await keys.digest_of(conn, "ratelimit:login_by_email", STRANGER)
        by_email = await keys.digest_of(conn, "email", STRANGER)
    await engine.dispose()
    assert {(r["name"], r["key_digest"]) for r in rows} >= {("login_by_email", address)}
    assert {r["name"] for r in rows} == {"login_by_ip", "login_by_email"}
    text = repr([dict(r) for r in rows])
    assert STRANGER not in text and "127.0.0.1" not in text and "testclient" not in text
    assert by_email not in text  # not the users' digest: a hit does not name its account


@pytest.mark.postgres
async def test_the_retention_job_removes_hits_that_stopped_counting(
        postgres_url: str) -> None:
    now = datetime.now(UTC)
    engine = create_engine(postgres_url)
    async with engine.begin() as conn:
        await conn.execute(insert(a.rate_limit_hits), [
            {"name": "login_by_ip", "key_digest": "0" * 64, "expires_at": now - timedelta(days=1)},
            {"name": "login_by_ip", "key_digest": "1" * 64, "expires_at": now + timedelta(days=1)}])
    assert await retention.expired_hits(engine, now, dry_run=True) == 1
    assert await retention.expired_hits(engine, now, dry_run=False) == 1
    async with engine.connect() as conn:
        left = (await conn.execute(select(a.rate_limit_hits.c.key_digest))).scalars().all()
    await engine.dispose()
    assert left == ["1" * 64]


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request, "sqlite", tmp_path) as url:
        yield url


async def test_on_sqlite_the_limits_stay_in_memory(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(settings_of(sqlite_url, tmp_path))
    assert isinstance(app.state.limits, ratelimit.MemoryLimits)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=PUBLIC_URL) as client:
        answers = [(await client.post("/api/v1/sessions", json=WRONG)).status_code
                   for _ in range(11)]
    async with app.state.database.connect() as conn:
        stored = (await conn.execute(select(a.rate_limit_hits))).all()
    await app.state.database.dispose()
    assert answers == [401] * 10 + [429] and stored == []


@pytest.mark.postgres
async def test_a_limited_request_never_waits_on_the_pool_it_holds(
        postgres_url: str, tmp_path: Path) -> None:
    """The check's connection is not the request's pool's: with one pooled connection,
    held by the request itself, a log-in is still answered (it waited out the pool's
    timeout, then failed, when the check took a second connection from that pool)."""
    app = create_app(settings_of(postgres_url, tmp_path))
    await app.state.database.dispose()
    app.state.database = create_engine(postgres_url, pool_size=1, max_overflow=0,
                                       pool_timeout=2)
    app.state.limits = ratelimit.limits_for(app.state.database)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=PUBLIC_URL) as client:
            answer = await client.post("/api/v1/sessions", json=WRONG)
        assert answer.status_code == 401, answer.text
    finally:
        await app.state.database.dispose()
