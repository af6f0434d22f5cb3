"""Alembic environment: runs migrations over the async engine Dozor uses."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from dozor.store.db import create_engine
from dozor.store.tables import metadata

MIGRATION_LOCK = 0x646F7A6F72  # "dozor": the advisory lock key migrations take on PostgreSQL


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # SQLite changes a column by copying its table and dropping the old one; with
            # foreign keys on, that drop deletes (ON DELETE CASCADE) every row referring
            # to the table. Off before the transaction begins (inside it, it is ignored),
            # as SQLite's own procedure for schema changes says.
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        else:
            # Several server nodes starting together each migrate: one at a time (the
            # lock ends with the session), the others then find nothing to do.
            await connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
            await connection.commit()
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `dozor migrate`")
asyncio.run(_online())
