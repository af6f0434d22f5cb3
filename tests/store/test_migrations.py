"""The migrations build exactly the schema tables.py declares, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.store import tables


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, tables.metadata))


async def test_migrations_match_the_declared_tables(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_differences) == []


async def test_a_default_organisation_exists_from_the_start(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        slugs = (await connection.execute(select(tables.organizations.c.slug))).scalars().all()
    assert slugs == ["default"]


async def test_ids_of_deleted_monitors_are_never_given_again(engine: AsyncEngine) -> None:
    from dozor.config.specs import parse_monitor
    from dozor.store import monitors as store
    from tests import fakes  # noqa: F401

    async with engine.begin() as connection:
        first = await store.create_monitor(connection, parse_monitor(
            {"name": "a", "kind": "scripted", "key": "a"}))
        await store.delete_monitor(connection, first)
        second = await store.create_monitor(connection, parse_monitor(
            {"name": "b", "kind": "scripted", "key": "b"}))
    assert second != first
