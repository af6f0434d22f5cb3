"""Insert-or-update in one statement on both backends (both speak ON CONFLICT)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def upsert(
    connection: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
) -> None:
    """Write ``rows``; where a row with the same ``keys`` exists, overwrite its other columns."""
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    others = [c for c in rows[0] if c not in keys]
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: statement.excluded[c] for c in others},
    )
    await connection.execute(statement, list(rows))


async def insert_missing(connection: AsyncConnection, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row`` unless it would break a unique constraint (another writer was first)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    await connection.execute(dialect.insert(table).values(**row).on_conflict_do_nothing())
