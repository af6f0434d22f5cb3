"""Remote probes as stored: their tokens (hashed), locations and last reports, and the
monitors assigned to a location.

A probe is the operator's, not an organisation's: it checks whichever monitors name its
location in ``locations``, for every organisation (``api.probes`` serves them).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.checks import receives_pings
from dozor.store import tables as t
from dozor.store.upsert import insert_missing

p = t.probes.c


async def ensure_location(connection: AsyncConnection, name: str, now: datetime) -> int:
    """The id of a location, created on first use."""
    await insert_missing(connection, t.locations, {"name": name, "created_at": now})
    found = await connection.scalar(select(t.locations.c.id).where(t.locations.c.name == name))
    return int(found or 0)


async def create_probe(connection: AsyncConnection, name: str, location: str,
                       token_hash: str, prefix: str, now: datetime) -> int:
    location_id = await ensure_location(connection, location, now)
    return int((await connection.execute(insert(t.probes).values(
        name=name, location_id=location_id, token_hash=token_hash, prefix=prefix,
        created_at=now, dropped=0).returning(p.id))).scalar_one())


async def find_probe(connection: AsyncConnection, name: str) -> Row[Any] | None:
    return (await connection.execute(select(t.probes).where(p.name == name))).first()


async def revoke_probe(connection: AsyncConnection, probe_id: int, now: datetime) -> None:
    # A revoked probe is gone, not silent: nothing more is said about it.
    await connection.execute(update(t.probes).where(p.id == probe_id, p.revoked_at.is_(None))
                             .values(revoked_at=now, silent_since=None))


def _with_location() -> Select[Any]:
    """Probes with their location's name (``location``)."""
    return (select(t.probes, t.locations.c.name.label("location"))
            .join(t.locations, t.locations.c.id == p.location_id))


async def list_probes(connection: AsyncConnection) -> Sequence[Row[Any]]:
    """Every probe with its location's name, by name."""
    rows: Sequence[Row[Any]] = (await connection.execute(
        _with_location().order_by(p.name))).all()
    return rows


async def probe_by_token_hash(connection: AsyncConnection, token_hash: str) -> Row[Any] | None:
    """The probe holding this token, with its location's name; None if unknown or revoked."""
    found: Row[Any] | None = (await connection.execute(
        _with_location().where(p.token_hash == token_hash, p.revoked_at.is_(None)))).first()
    return found


async def assigned_monitors(connection: AsyncConnection, location: str, *,
                            runnable: bool = True, among: Collection[int] | None = None
                            ) -> list[Row[Any]]:
    """The monitors a probe at ``location`` checks: those naming it in ``locations``,
    but no heartbeat (pushed to, not checked). ``runnable``: only those to run now (not
    paused, their organisation not restricted); otherwise also those, with ``restricted``.
    ``among``: only of these ids (a delivery's monitors, not the location's thousands).
    """
    m = t.monitors.c
    restricted = t.organizations.c.restricted_at.is_not(None).label("restricted")
    query = (select(t.monitors, restricted)
             .join(t.organizations, t.organizations.c.id == m.org_id)
             .where(m.locations.is_not(None)).order_by(m.id))
    if among is not None:
        query = query.where(m.id.in_(among))
    if runnable:
        query = query.where(m.paused.is_(False), t.organizations.c.restricted_at.is_(None))
    rows = (await connection.execute(query)).all()
    return [row for row in rows if location in row.locations and not receives_pings(row.kind)]


async def record_contact(connection: AsyncConnection, probe_id: int, now: datetime,
                         **report: Any) -> None:
    """Note that the probe was heard from, with what it reported (``dropped``,
    ``last_version``, ``last_result_at``, ``last_lag_ms``: those it sent)."""
    await connection.execute(update(t.probes).where(p.id == probe_id)
                             .values(last_seen_at=now, **report))


async def mark_silent(connection: AsyncConnection, cutoff: datetime) -> list[Row[Any]]:
    """Mark silent every live probe last heard from before ``cutoff`` (one never heard
    from: created before it) and not marked yet; ``silent_since`` becomes that last
    contact (or creation). Returns the probes this call marked, with their location: a
    compare-and-swap, so of two servers doing it at once only one gets a probe back."""
    heard = func.coalesce(p.last_seen_at, p.created_at)
    marked = (await connection.execute(
        update(t.probes).where(p.revoked_at.is_(None), p.silent_since.is_(None), heard < cutoff)
        .values(silent_since=heard).returning(p.id))).scalars().all()
    if not marked:
        return []
    return list((await connection.execute(
        _with_location().where(p.id.in_(marked)).order_by(p.name))).all())


async def heard_again(connection: AsyncConnection) -> list[Row[Any]]:
    """Live probes marked silent that have been heard from since, with their location."""
    return list((await connection.execute(_with_location().where(
        p.silent_since.is_not(None), p.last_seen_at > p.silent_since, p.revoked_at.is_(None))
        .order_by(p.name))).all())


async def clear_silence(connection: AsyncConnection, probe_id: int) -> bool:
    """Unmark a probe heard from again; False if another server did first."""
    cleared = await connection.execute(
        update(t.probes).where(p.id == probe_id, p.silent_since.is_not(None),
                               p.last_seen_at > p.silent_since)
        .values(silent_since=None))
    return bool(cleared.rowcount)

