"""Database connections: one async engine per process, SQLite tuned for a single writer.

>>> normalise_url("postgresql://localhost/dozor")
'postgresql+asyncpg://localhost/dozor'
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
            "postgres": "postgresql+asyncpg"}


def normalise_url(url: str) -> str:
    """Accept plain ``sqlite:///`` and ``postgresql://`` URLs; use the async drivers."""
    parsed = make_url(url)
    driver = _DRIVERS.get(parsed.drivername, parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


_WRITERS: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Lock] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()`` for a transaction that writes. SQLite has one writer at a time;
    its busy handler makes waiting writers sleep in growing steps (up to 100 ms), which
    shows as latency spikes when the result writer and the alert dispatcher write at
    once. Here they queue on an asyncio lock instead and go in turn as soon as the
    other commits. PostgreSQL needs no such thing."""
    if engine.dialect.name != "sqlite":
        async with engine.begin() as connection:
            yield connection
        return
    lock = _WRITERS.setdefault(engine, asyncio.Lock())
    async with lock, engine.begin() as connection:
        yield connection


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An engine for ``url``; creates the SQLite file's folder when needed."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "postgresql":
        if "poolclass" not in options:  # NullPool (one-shot tools) takes no size
            options.setdefault("pool_size", 10)
        options.setdefault("pool_pre_ping", True)
        # A statement stuck behind a lock or a half-open connection fails instead of
        # holding the writer (and its growing queue) forever.
        options.setdefault("connect_args", {"command_timeout": 60, "timeout": 10})
    engine = create_async_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
    return engine


def _tune_sqlite(connection: Any, _record: Any) -> None:
    # WAL lets readers (the CLI, the API) work while the engine writes; NORMAL
    # synchronous is durable across process crashes in WAL mode, which is the
    # guarantee we give (power loss may cost the last transaction).
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
