"""Rotating the instance key (``dozor privacy rotate-key``).

A new key goes first in the key file; then every value sealed with the instance key
(secrets, and audit addresses of no organisation) and every wrapped data key is sealed
again under it, a batch of rows per transaction. Personal fields need no work: their
data keys do not change, only the wrapping does. Nor do the digests of sealed addresses:
the lookup key (``instance_keys``) is re-wrapped like a data key, never replaced. Old
keys stay in the file until ``--drop-old`` after a complete pass, so a rotation killed
midway loses nothing, and running it again finishes it (``meta.key_rotation`` names the
key it was rotating to)::

    dozor privacy rotate-key             # new primary key, everything re-sealed
    dozor privacy rotate-key --drop-old  # the same, then only the new key is kept
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cryptography.fernet import Fernet
from sqlalchemy import Table, column, delete, select, table, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.privacy import keys
from dozor.settings import Settings
from dozor.store import tables as t
from dozor.store.db import write_transaction
from dozor.store.sealed import SEALED_TYPES
from dozor.store.upsert import upsert

BATCH = 500
MARK = "key_rotation"  # meta: the fingerprint of the key a rotation under way moves to
SETTLE = 5.0  # seconds for running servers to load a new key file (they look every 2 s)


@dataclass
class Rotation:
    resealed: dict[str, int] = field(default_factory=dict)  # "table.column": values
    resumed: bool = False
    dropped: int = 0  # old keys removed

    @property
    def total(self) -> int:
        return sum(self.resealed.values())


# Keys wrapped by the instance key (a bare token, no prefix): the data keys and the lookup key.
WRAPPED = [(t.data_keys, "org_id", "wrapped"), (t.instance_keys, "name", "wrapped")]


def sealed_columns() -> list[tuple[Table, str, str]]:
    """(table, primary key, column) of every column of a sealing type, and the wrapped
    data keys: found from the tables, so a new sealed column is rotated too."""
    found = [(table, next(iter(table.primary_key.columns)).name, c.name)
             for table in t.metadata.sorted_tables if len(table.primary_key.columns) == 1
             for c in table.columns if isinstance(c.type, SEALED_TYPES)]
    return [*found, *WRAPPED]


async def rotate(database: AsyncEngine, settings: Settings, *, drop_old: bool = False,
                 settle: float = SETTLE) -> Rotation:
    """Rotate to a new instance key (or, from a setting, to its first key), re-seal
    everything, and with ``drop_old`` keep only the new key."""
    report = Rotation()
    ring = keys.load(settings)
    if not settings.secret_key.get_secret_value():
        ring, report.resumed = await _new_primary(database, settings, ring)
        if not report.resumed:
            await asyncio.sleep(settle)  # servers now open (and seal with) the new key
    keys.install(ring)
    report.resealed = await reseal(database, ring)
    while drop_old and await reseal(database, ring):
        pass  # a server still on the old key wrote meanwhile: until a pass finds nothing
    async with write_transaction(database) as connection:
        await connection.execute(delete(t.meta).where(t.meta.c.key == MARK))
    if drop_old and len(ring.keys) > 1 and not settings.secret_key.get_secret_value():
        keys.write_key_file(keys.key_file(settings), ring.keys[:1])
        report.dropped = len(ring.keys) - 1
        keys.install(keys.Keyring(ring.keys[:1], ring.source))
    return report


async def _new_primary(database: AsyncEngine, settings: Settings,
                       ring: keys.Keyring) -> tuple[keys.Keyring, bool]:
    """The keyring to rotate to, and whether it is the one a killed rotation left."""
    async with database.connect() as connection:
        mark = (await connection.execute(select(t.meta.c.value)
                                         .where(t.meta.c.key == MARK))).scalar()
    if mark == int(ring.fingerprint, 16):
        return ring, True
    new = keys.Keyring([Fernet.generate_key(), *ring.keys], ring.source)
    async with write_transaction(database) as connection:  # before the file: see MARK
        await upsert(connection, t.meta, [{"key": MARK, "value": int(new.fingerprint, 16)}],
                     ["key"])
    keys.write_key_file(keys.key_file(settings), new.keys)
    return new, False


async def reseal(database: AsyncEngine, ring: keys.Keyring,
                 stop_after: int | None = None) -> dict[str, int]:
    """Seal again under the primary key every instance-sealed value not sealed with it
    yet, ``BATCH`` rows a transaction; ``stop_after`` batches (to test an interruption)."""
    done: dict[str, int] = {}
    batches = 0
    for source, key, name in sealed_columns():
        raw = table(source.name, column(key), column(name))
        after: object = None
        while stop_after is None or batches < stop_after:
            batches += 1
            async with write_transaction(database) as connection:
                query = select(raw.c[key], raw.c[name]).where(raw.c[name].is_not(None))
                if after is not None:
                    query = query.where(raw.c[key] > after)
                rows = (await connection.execute(query.order_by(raw.c[key]).limit(BATCH))).all()
                wrapped = any(source is w for w, _, _ in WRAPPED)
                for row_key, value in rows:
                    if (new := _resealed(ring, value, wrapped=wrapped)) is not None:
                        await connection.execute(update(raw).where(raw.c[key] == row_key)
                                                 .values({name: new}))
                        done[f"{source.name}.{name}"] = done.get(f"{source.name}.{name}", 0) + 1
            if len(rows) < BATCH:
                break
            after = rows[-1][0]
    return done


def _resealed(ring: keys.Keyring, value: str, *, wrapped: bool) -> str | None:
    """``value`` sealed under the primary key, or None when it is already (or is no
    instance-sealed value: personal fields keep their data key)."""
    if wrapped:
        token = value.encode()
    elif value.startswith(keys.SECRET):
        token = value.removeprefix(keys.SECRET).encode()
    else:
        return None
    if ring.is_primary(token):
        return None
    fresh = ring.encrypt(ring.decrypt(token)).decode()
    return fresh if wrapped else keys.SECRET + fresh
