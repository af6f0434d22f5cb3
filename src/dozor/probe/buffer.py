"""The probe's outbox: results measured but not yet acknowledged by the server, kept in a
SQLite file so that they survive a lost connection and a restart of the probe.

Results go to the server oldest first, in batches; a batch is removed only once the
server has answered that it stored it. A batch sent but not acknowledged (the answer was
lost) is sent again, and the server ignores results it already holds (same monitor, time
and location), so nothing is lost and nothing is stored twice.

The file is bounded (``max_results``): when the server stays away so long that the
bound is reached, the oldest results make room and are counted (``dropped``, kept in the
file too), so the loss is known rather than silent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from dozor.probe.wire import ProbeResult

log = logging.getLogger(__name__)
MAX_RESULTS = 1_000_000  # about 200 MB of file at worst; a day of 10 checks a second

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('dropped', 0);
"""


class ResultBuffer:
    def __init__(self, path: Path, max_results: int = MAX_RESULTS) -> None:
        self.path = path
        self.max_results = max_results
        self.size = 0  # results waiting
        self.dropped = 0  # ever made room for, since the file was made
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        # WAL and synchronous=NORMAL: a committed batch survives the probe being killed;
        # only a power cut can take the last moments, which fsync on every result would
        # not be worth.
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.executescript(SCHEMA)
        await self._db.commit()
        self.size = await self._scalar("SELECT count(*) FROM pending")
        self.dropped = await self._scalar("SELECT value FROM counters WHERE name = 'dropped'")

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def add(self, results: Sequence[ProbeResult]) -> None:
        """Keep ``results`` (one transaction), making room by dropping the oldest if the
        bound is reached."""
        if not results:
            return
        db = self._open()
        await db.executemany("INSERT INTO pending (body) VALUES (?)",
                             [(r.model_dump_json(),) for r in results])
        excess = self.size + len(results) - self.max_results
        if excess > 0:
            await db.execute("DELETE FROM pending WHERE seq IN "
                             "(SELECT seq FROM pending ORDER BY seq LIMIT ?)", (excess,))
            await db.execute("UPDATE counters SET value = value + ? WHERE name = 'dropped'",
                             (excess,))
            self.dropped += excess
            log.error("result buffer full (%d): dropped the %d oldest results",
                      self.max_results, excess)
        await db.commit()
        self.size += len(results) - max(excess, 0)

    async def oldest(self, limit: int) -> list[tuple[int, ProbeResult]]:
        """Up to ``limit`` waiting results, oldest first, each with its sequence number."""
        rows = await self._open().execute_fetchall(
            "SELECT seq, body FROM pending ORDER BY seq LIMIT ?", (limit,))
        return [(int(seq), ProbeResult.model_validate_json(body)) for seq, body in rows]

    async def acknowledge(self, through: int) -> None:
        """The server stored every result up to sequence number ``through``."""
        db = self._open()
        cursor = await db.execute("DELETE FROM pending WHERE seq <= ?", (through,))
        await db.commit()
        self.size -= max(cursor.rowcount, 0)

    def _open(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the result buffer is not open")
        return self._db

    async def _scalar(self, query: str) -> int:
        rows = list(await self._open().execute_fetchall(query))
        return int(rows[0][0]) if rows else 0
