"""``dozor probes``: the operator's remote probes. Each checks the monitors that name its
location in ``locations`` and sends the results here (``api.probes``); its token is
shown once, at ``add``, and stored hashed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.api.probes import TOKEN_PREFIX
from dozor.api.security import digest, new_token
from dozor.cli_format import table, when
from dozor.cli_support import with_database
from dozor.privacy import audit
from dozor.store import probes as store
from dozor.validation import LOCATION_PATTERN


def _checked(value: str, what: str) -> str:
    if not re.fullmatch(LOCATION_PATTERN, value) or len(value) > 64:
        raise click.BadParameter("lower-case letters, digits and '-', at most 64, "
                                 "starting with a letter or digit", param_hint=what)
    return value


@click.group("probes")
def probes_group() -> None:
    """Remote probes: agents that check monitors from their location."""


@probes_group.command("add")
@click.argument("name")
@click.option("--location", required=True, help="Where it checks from (created if new).")
@with_database
async def probes_add(database: AsyncEngine, name: str, location: str) -> None:
    """Add a probe and print its token (shown this once)."""
    _checked(name, "NAME")
    _checked(location, "--location")
    token, now = new_token(TOKEN_PREFIX), datetime.now(UTC)
    async with database.begin() as connection:
        if await store.find_probe(connection, name) is not None:
            raise click.ClickException(f"name: a probe named {name!r} exists")
        await store.create_probe(connection, name, location, digest(token), token[:12], now)
        await audit.record(connection, "probe_added", org_id=None, user_id=None,
                           target=f"probe {name}", detail={"location": location})
    click.echo(f"probe {name} at {location}; its token (shown once, keep it secret):")
    click.echo(token)
    click.echo(f"run it: dozor probe --server <this server's URL> --token {token}")


@probes_group.command("list")
@with_database
async def probes_list(database: AsyncEngine) -> None:
    """Each probe: its location, last contact, lag, version, results it dropped, and
    since when it is silent (not heard from for DOZOR_PROBE_SILENT_AFTER)."""
    async with database.connect() as connection:
        rows = await store.list_probes(connection)
    now = datetime.now(UTC)
    click.echo(table(
        ["NAME", "LOCATION", "TOKEN", "LAST CONTACT", "LAG", "VERSION", "DROPPED",
         "SILENT SINCE", "REVOKED"],
        [[row.name, row.location, row.prefix + "...", when(row.last_seen_at, now),
          _lag(row), row.last_version or "-", str(row.dropped), when(row.silent_since, now),
          f"{row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "-"] for row in rows]))


def _lag(row: Any) -> str:
    if row.last_lag_ms is None:
        return "-"
    return f"{row.last_lag_ms / 1000:.1f} s"


@probes_group.command("revoke")
@click.argument("name")
@with_database
async def probes_revoke(database: AsyncEngine, name: str) -> None:
    """Revoke a probe's token: it is refused from its next request on."""
    async with database.begin() as connection:
        row = await store.find_probe(connection, name)
        if row is None:
            raise click.ClickException(f"name: no probe {name!r} (see `dozor probes list`)")
        if row.revoked_at is not None:
            raise click.ClickException(f"probe {name} was revoked already")
        await store.revoke_probe(connection, row.id, datetime.now(UTC))
        await audit.record(connection, "probe_revoked", org_id=None, user_id=None,
                           target=f"probe {name}")
    click.echo(f"probe {name}: revoked")


GROUPS = (probes_group,)
