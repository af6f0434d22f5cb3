"""Insert-or-update in one statement on both backends (both speak ON CONFLICT)."""

from __future__ import annotations

import functools
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
    statement = _statement(connection.dialect.name, table, tuple(keys), tuple(rows[0]))
    await connection.execute(statement, list(rows))


@functools.lru_cache(maxsize=64)
def _statement(dialect_name: str, table: Table, keys: tuple[str, ...],
               columns: tuple[str, ...]) -> Any:
    # Built once per shape: constructing `excluded` and its columns costs more than a
    # batch of a thousand rows takes to send.
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: statement.excluded[c] for c in columns if c not in keys},
    )


async def insert_missing(connection: AsyncConnection, table: Table, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless it would break a unique constraint (another writer was first).
    True when this call inserted it."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    result = await connection.execute(dialect.insert(table).values(**row)
                                      .on_conflict_do_nothing())
    return result.rowcount == 1


async def insert_missing_rows(connection: AsyncConnection, table: Table,
                              rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Insert those of ``rows`` whose keys are not stored yet (nor earlier in ``rows``);
    the primary keys of those inserted. One statement per thousand rows on both
    backends."""
    if not rows:
        return []
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (dialect.insert(table).on_conflict_do_nothing()
                 .returning(*table.primary_key.columns))
    return [tuple(key) for key in await connection.execute(statement, list(rows))]
