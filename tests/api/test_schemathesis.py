"""Schemathesis walks every operation of the OpenAPI document the app serves, with
generated input (valid and invalid), as an owner: no input may make the API answer 500.

The app runs without its background parts (no engine, no dispatcher): what is tested is
the API's handling of input, and nothing generated here may reach the network."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from sqlalchemy import insert
from starlette.types import ASGIApp, Receive, Scope, Send

from dozor.api.ratelimit import RateLimit
from dozor.api.security import digest, hash_password, new_token
from dozor.app import create_app
from dozor.settings import Settings
from dozor.store import account_tables as a
from dozor.store.migrate import upgrade

PASSWORD = "correct horse battery"
EXAMPLES = 20  # per operation and mode (valid input, invalid input)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = tmp_path_factory.mktemp("schemathesis")
    upgrade(f"sqlite:///{path / 'dozor.db'}")
    return path


class Owner:
    """The owner of the default organisation, with a fresh write token for every call:
    a generated call may revoke the token it came with, and must not spoil the next."""

    def __init__(self, data_dir: Path) -> None:
        self.database = sqlalchemy.create_engine(f"sqlite:///{data_dir / 'dozor.db'}")
        with self.database.begin() as connection:
            self.user_id = connection.execute(insert(a.users).values(
                email="owner@example.com", name="Owner", failed_logins=0,
                password_hash=hash_password(PASSWORD), created_at=datetime.now(UTC),
            )).inserted_primary_key[0]
            connection.execute(insert(a.memberships).values(
                user_id=self.user_id, org_id=1, role="owner", created_at=datetime.now(UTC)))

    def headers(self) -> dict[str, str]:
        token = new_token()
        with self.database.begin() as connection:
            connection.execute(insert(a.api_tokens).values(
                org_id=1, user_id=self.user_id, name="fuzz", prefix=token[:12],
                token_hash=digest(token), scope="write", created_at=datetime.now(UTC)))
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def owner(data_dir: Path) -> Iterator[Owner]:
    made = Owner(data_dir)
    yield made
    made.database.dispose()


@pytest.fixture(scope="module")
def app(data_dir: Path) -> ASGIApp:
    served = create_app(Settings.model_validate({"data_dir": data_dir, "signup": True}))

    async def without_background_parts(scope: Scope, receive: Receive, send: Send) -> None:
        """The app, with its lifespan (engine, dispatcher) answered but not run."""
        if scope["type"] != "lifespan":
            await served(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return without_background_parts


@pytest.fixture
def no_login_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # Generated log-ins would soon be rate limited: that is a 429, not what is fuzzed.
    monkeypatch.setattr("dozor.api.accounts.LOGIN_BY_IP", RateLimit(10**9, 1.0))
    monkeypatch.setattr("dozor.api.accounts.LOGIN_BY_EMAIL", RateLimit(10**9, 1.0))


def fuzz(operation: APIOperation, mode: GenerationMode, owner: Owner) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def calls(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=owner.headers(), checks=[not_a_server_error])

    with contextlib.suppress(Unsatisfiable):  # nothing invalid to make without parameters
        calls()


@pytest.mark.usefixtures("no_login_limits")
def test_no_generated_input_makes_the_api_fail(app: ASGIApp, owner: Owner) -> None:
    # One test walks the operations (schemathesis's pytest plugin does not work with
    # this pytest); it reports every failing operation, not just the first.
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
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
