"""Reading and changing monitors and maintenance windows.

Every change bumps the installation's configuration revision and stamps the changed
row with it, so a running engine that polls the revision picks up changes made by any
process (the CLI, another server node) without a restart.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.checks import receives_pings
from dozor.config.specs import MaintenanceSpec, MonitorSpec
from dozor.core.maintenance import Window
from dozor.core.types import MonitorState
from dozor.store.tables import (
    maintenance_windows,
    meta,
    monitor_state,
    monitors,
    organizations,
)

DEFAULT_ORG = 1
REVISION_KEY = "config_revision"


async def current_revision(connection: AsyncConnection) -> int:
    value = await connection.scalar(select(meta.c.value).where(meta.c.key == REVISION_KEY))
    return int(value or 0)


async def next_revision(connection: AsyncConnection) -> int:
    """Bump the configuration revision inside the caller's transaction."""
    result = await connection.execute(
        update(meta).where(meta.c.key == REVISION_KEY)
        .values(value=meta.c.value + 1).returning(meta.c.value)
    )
    return int(result.scalar_one())


async def list_monitors(
    connection: AsyncConnection, org_id: int | None = None, since_revision: int | None = None
) -> Sequence[Row[Any]]:
    query = select(monitors).order_by(monitors.c.name)
    if org_id is not None:
        query = query.where(monitors.c.org_id == org_id)
    if since_revision is not None:
        query = query.where(monitors.c.revision > since_revision)
    return (await connection.execute(query)).all()


async def monitors_to_run(connection: AsyncConnection, since_revision: int | None = None
                          ) -> Sequence[Row[Any]]:
    """Monitors as the engine runs them: with ``restricted``, true when their organisation
    has frozen its processing (``privacy.restriction``); the engine holds those as paused."""
    restricted = organizations.c.restricted_at.is_not(None).label("restricted")
    query = select(monitors, restricted).join(
        organizations, organizations.c.id == monitors.c.org_id)
    if since_revision is not None:
        query = query.where(monitors.c.revision > since_revision)
    return (await connection.execute(query)).all()


def checked_here(locations: Sequence[str] | None, location: str) -> bool:
    """Whether a server at ``location`` checks a monitor with these ``locations`` (NULL:
    the server's own location, wherever that is). Probes get only monitors naming theirs.

    >>> checked_here(None, "local"), checked_here(["fra", "waw"], "local")
    (True, False)
    """
    return locations is None or location in locations


async def monitor_ids(connection: AsyncConnection) -> set[int]:
    return set((await connection.execute(select(monitors.c.id))).scalars())


async def find_monitor(connection: AsyncConnection, name: str, org_id: int = DEFAULT_ORG
                       ) -> Row[Any] | None:
    query = select(monitors).where(monitors.c.org_id == org_id, monitors.c.name == name)
    return (await connection.execute(query)).first()


async def create_monitor(
    connection: AsyncConnection, spec: MonitorSpec, org_id: int = DEFAULT_ORG,
    managed_by: str | None = None,
) -> int:
    now = datetime.now(UTC)
    values = spec.row_values()
    if receives_pings(spec.fields.kind):
        values["push_token"] = secrets.token_urlsafe(16)
    result = await connection.execute(
        insert(monitors).values(
            org_id=org_id, managed_by=managed_by, revision=await next_revision(connection),
            created_at=now, updated_at=now, **values,
        ).returning(monitors.c.id)
    )
    monitor_id = int(result.scalar_one())
    await connection.execute(
        insert(monitor_state).values(monitor_id=monitor_id, state=MonitorState.UNKNOWN.value)
    )
    return monitor_id


async def update_monitor(
    connection: AsyncConnection, monitor_id: int, spec: MonitorSpec,
    managed_by: str | None = None,
) -> None:
    values = spec.row_values()
    await connection.execute(
        update(monitors).where(monitors.c.id == monitor_id).values(
            revision=await next_revision(connection), updated_at=datetime.now(UTC),
            managed_by=managed_by, **values,
        )
    )


async def set_paused(connection: AsyncConnection, monitor_id: int, paused: bool) -> None:
    await connection.execute(
        update(monitors).where(monitors.c.id == monitor_id).values(
            paused=paused, revision=await next_revision(connection),
            updated_at=datetime.now(UTC),
        )
    )


async def delete_monitor(connection: AsyncConnection, monitor_id: int) -> None:
    await next_revision(connection)
    await connection.execute(delete(monitors).where(monitors.c.id == monitor_id))


async def list_maintenance(connection: AsyncConnection, org_id: int | None = None
                           ) -> Sequence[Row[Any]]:
    query = select(maintenance_windows).order_by(maintenance_windows.c.name)
    if org_id is not None:
        query = query.where(maintenance_windows.c.org_id == org_id)
    return (await connection.execute(query)).all()


def window_from_row(row: Any) -> Window:
    """A stored window as the engine judges it."""
    duration = timedelta(milliseconds=row.duration_ms) if row.duration_ms else None
    return Window(name=row.name, starts_at=row.starts_at, ends_at=row.ends_at, cron=row.cron,
                  duration=duration, timezone=row.timezone, all_monitors=row.all_monitors,
                  monitor_names=frozenset(row.monitor_names), tags=frozenset(row.tags))


def maintenance_values(spec: MaintenanceSpec) -> dict[str, Any]:
    start, end = spec.bounds_utc()
    duration = spec.duration.total_seconds() * 1000 if spec.duration else None
    return {
        "name": spec.name, "starts_at": start, "ends_at": end, "cron": spec.cron,
        "duration_ms": round(duration) if duration is not None else None,
        "timezone": spec.timezone, "all_monitors": spec.all_monitors,
        "monitor_names": sorted(set(spec.monitors)), "tags": sorted(set(spec.tags)),
    }


async def get_maintenance(connection: AsyncConnection, org_id: int, window_id: int
                          ) -> Row[Any] | None:
    table = maintenance_windows
    return (await connection.execute(
        select(table).where(table.c.id == window_id, table.c.org_id == org_id))).first()


async def create_maintenance(
    connection: AsyncConnection, spec: MaintenanceSpec, org_id: int = DEFAULT_ORG,
    managed_by: str | None = None,
) -> int:
    result = await connection.execute(insert(maintenance_windows).values(
        org_id=org_id, created_at=datetime.now(UTC), managed_by=managed_by,
        revision=await next_revision(connection), **maintenance_values(spec),
    ).returning(maintenance_windows.c.id))
    return int(result.scalar_one())


async def update_maintenance(
    connection: AsyncConnection, window_id: int, spec: MaintenanceSpec,
    managed_by: str | None = None,
) -> None:
    await connection.execute(
        update(maintenance_windows).where(maintenance_windows.c.id == window_id).values(
            managed_by=managed_by, revision=await next_revision(connection),
            **maintenance_values(spec),
        )
    )


async def save_maintenance(
    connection: AsyncConnection, spec: MaintenanceSpec, org_id: int = DEFAULT_ORG,
    managed_by: str | None = None,
) -> None:
    """Create the window, or replace the one of the same name."""
    table = maintenance_windows
    existing = await connection.scalar(
        select(table.c.id).where(table.c.org_id == org_id, table.c.name == spec.name)
    )
    if existing is None:
        await create_maintenance(connection, spec, org_id, managed_by)
    else:
        await update_maintenance(connection, existing, spec, managed_by)


async def delete_maintenance(connection: AsyncConnection, window_id: int) -> None:
    await next_revision(connection)
    await connection.execute(delete(maintenance_windows).where(maintenance_windows.c.id
                                                               == window_id))

