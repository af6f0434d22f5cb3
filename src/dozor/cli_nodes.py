"""``dozor nodes``: the server processes sharing this database, and what each checks."""

from __future__ import annotations

from datetime import timedelta

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.cli_format import table, when
from dozor.cli_support import with_database
from dozor.store import nodes
from dozor.store.db import is_sqlite


@click.command("nodes")
@with_database
async def nodes_list(database: AsyncEngine) -> None:
    """Each server node: where it runs, its last heartbeat, how many monitors it holds."""
    if is_sqlite(database):
        click.echo("SQLite: one server node checks every monitor (several nodes need "
                   "PostgreSQL)")
        return
    async with database.connect() as connection:
        found = await nodes.all_nodes(connection)
        now = await nodes.database_now(connection)
    click.echo(table(
        ["ID", "NODE", "LOCATION", "VERSION", "STARTED", "HEARTBEAT", "MONITORS", "STATE"],
        [[str(node.id), node.name, node.location, node.version, when(node.started_at, now),
          when(node.heartbeat_at, now), str(node.monitors),
          "live" if now - node.heartbeat_at <= timedelta(milliseconds=node.lease_ms)
          else "silent"] for node in found]))


GROUPS = (nodes_list,)
