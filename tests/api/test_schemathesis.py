"""Schemathesis walks every operation of the OpenAPI document the app serves, with
generated input (valid and invalid), as an owner: no input may make the API answer 500.

It runs on SQLite and on PostgreSQL, over loopback, without the app's background parts
(no engine, no dispatcher): what is tested is the API's handling of input, and nothing
generated here may reach the network."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from sqlalchemy import insert
from sqlalchemy.pool import NullPool
from starlette.types import Receive, Scope, Send

from dozor.api.ratelimit import RateLimit
from dozor.api.security import digest, hash_password, new_token
from dozor.app import create_app
from dozor.settings import Settings
from dozor.store import account_tables as a
from dozor.store import accounts
from dozor.store.db import create_engine
from tests.conftest import fresh_database

PASSWORD = "correct horse battery"
EXAMPLES = 20  # per operation and mode (valid input, invalid input)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql",
                                                                marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database for the whole walk, on each backend (PostgreSQL refuses text that
    SQLite keeps, so a generated value can fail on one only)."""
    with fresh_database(request, request.param, tmp_path_factory.mktemp("fuzz")) as url:
        yield url


class Owner:
    """The owner of the default organisation, with a fresh write token for every call:
    a generated call may revoke the token it came with, and must not spoil the next."""

    def __init__(self, database_url: str) -> None:
        # No pool: every asyncio.run below is a new event loop.
        self.database = create_engine(database_url, poolclass=NullPool)
        self.user_id = asyncio.run(self._insert_owner())

    async def _insert_owner(self) -> int:
        async with self.database.begin() as connection:
            user_id: int = (await connection.execute(insert(a.users).values(
                **await accounts.email_fields(connection, "owner@example.com"),
                name="Owner", failed_logins=0,
                password_hash=hash_password(PASSWORD), created_at=datetime.now(UTC),
            ))).inserted_primary_key[0]
            await connection.execute(insert(a.memberships).values(
                user_id=user_id, org_id=1, role="owner", created_at=datetime.now(UTC)))
        return user_id

    def headers(self) -> dict[str, str]:
        token = new_token()
        asyncio.run(self._insert_token(token))
        return {"Authorization": f"Bearer {token}"}

    async def _insert_token(self, token: str) -> None:
        async with self.database.begin() as connection:
            await connection.execute(insert(a.api_tokens).values(
                org_id=1, user_id=self.user_id, name="fuzz", prefix=token[:12],
                token_hash=digest(token), scope="write", created_at=datetime.now(UTC)))


@pytest.fixture(scope="module")
def owner(database_url: str) -> Iterator[Owner]:
    made = Owner(database_url)
    yield made
    asyncio.run(made.database.dispose())


@pytest.fixture(scope="module")
def base_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API served over loopback by uvicorn in a thread of its own (one event loop for
    the whole walk, as in production), with its lifespan (engine, dispatcher) answered
    but not run: nothing generated here may reach the network."""
    served = create_app(Settings.model_validate({
        "data_dir": tmp_path_factory.mktemp("data"), "database_url": database_url,
        "signup": True}))

    async def without_background_parts(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await served(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await served.state.database.dispose()  # its connections live on this loop
                await send({"type": "lifespan.shutdown.complete"})
                return

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(without_background_parts, host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):  # bounded: 10 s
        if server.started:
            break
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def no_login_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # Generated log-ins would soon be rate limited: that is a 429, not what is fuzzed.
    unlimited = RateLimit("login_unlimited", 10**9, 1.0)
    monkeypatch.setattr("dozor.api.accounts.LOGIN_BY_IP", unlimited)
    monkeypatch.setattr("dozor.api.accounts.LOGIN_BY_EMAIL", unlimited)


def fuzz(operation: APIOperation, mode: GenerationMode, owner: Owner) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def calls(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=owner.headers(), checks=[not_a_server_error])

    with contextlib.suppress(Unsatisfiable):  # nothing invalid to make without parameters
        calls()


@pytest.mark.usefixtures("no_login_limits")
def test_no_generated_input_makes_the_api_fail(base_url: str, owner: Owner) -> None:
    # One test walks the operations (schemathesis's pytest plugin does not work with
    # this pytest); it reports every failing operation, not just the first.
    schema = schemathesis.openapi.from_url(f"{base_url}/api/openapi.json")
    # /metrics answers 503 until the engine has started, which it never does here; it
    # takes no input but a header, and tests/metrics walks it.
    operations = [operation for operation in (r.ok() for r in schema.get_all_operations())
                  if operation.path != "/metrics"]
    assert len(operations) > 20
    failures = []
    for operation in operations:
        for mode in GenerationMode:
            try:
                fuzz(operation, mode, owner)
            except Exception as error:  # noqa: BLE001 (collected, reported below)
                failures.append(f"{operation.label} ({mode.value}): {error}")
    assert not failures, "\n\n".join(failures)
