"""Fixtures every test can use: databases on SQLite and PostgreSQL, migrated once.

Database tests take the ``database_url`` fixture and so run twice, once per backend.
PostgreSQL tests skip with a reason when no server answers, unless
DOZOR_TEST_REQUIRE_POSTGRES=1 (CI sets it), where they fail instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.privacy import keys
from dozor.store.db import create_engine
from dozor.store.migrate import upgrade

POSTGRES_URL = os.environ.get(
    "DOZOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("DOZOR_TEST_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session", autouse=True)
def keyring() -> Iterator[keys.Keyring]:
    """One instance key for the whole run: the templates' data keys are wrapped with it."""
    ring = keys.Keyring([Fernet.generate_key()], "the tests' keyring")
    keys.install(ring)
    yield ring
    keys.install(None)


@pytest.fixture(autouse=True)
def fresh_data_keys(keyring: keys.Keyring) -> Iterator[None]:
    """Each test's database is new: no data key cached from another test's database."""
    keys.install(keyring)
    keys.forget_all()
    yield
    keys.install(keyring)
    keys.forget_all()


def _pg_dsn(database: str) -> str:
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


async def _pg_admin(*statements: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "dozor.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    name = f"dozor_template_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        reason = f"PostgreSQL is not reachable at {POSTGRES_URL}: {error}"
        if REQUIRE_POSTGRES:
            pytest.fail(reason)
        pytest.skip(reason)
    upgrade(_pg_dsn(name))
    yield name
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def fresh_database(request: pytest.FixtureRequest, backend: str,
                   directory: Path) -> Iterator[str]:
    """A freshly migrated, empty database of ``backend``, copied from its template."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = directory / "dozor.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("postgres_template")
    name = f"dozor_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    try:
        yield _pg_dsn(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database of each backend."""
    with fresh_database(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty PostgreSQL database, for what only PostgreSQL does
    (several server nodes); mark such tests ``postgres``."""
    with fresh_database(request, "postgresql", tmp_path) as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()
