"""A sliding-window limit per key (log-in, tokens, password reset, invitations), counted
in memory on SQLite and in the database on PostgreSQL.

>>> limit = RateLimit("example", 2, 60.0)
>>> limit.hit("ip:1", now=0.0), limit.hit("ip:1", now=1.0), limit.hit("ip:1", now=2.0)
(None, None, 58.0)

Routes call ``await enforce(request, (LIMIT, key), ...)``, which answers 429 with
``Retry-After``. The counter is chosen once, when the app is made (``limits_for``, kept
as ``app.state.limits``):

- SQLite has one server process (a second ``dozor serve`` is refused), so
  :class:`MemoryLimits` counts each limit's hits in memory, as a deque of times per key.
- PostgreSQL may have several nodes, and each counting alone would allow the limit once
  per node. :class:`SharedLimits` keeps one row per allowed hit in ``rate_limit_hits``:
  the limit's name, a keyed digest of the key (never an address or IP as such), and the
  time the hit stops counting (its time plus the window, by the database's clock). A
  check counts the rows of (name, digest) not yet expired: at the limit it is refused,
  and ``Retry-After`` is when the oldest expires; otherwise a row is added. That is the
  in-memory sliding window, row for row; a refused hit is not stored, as there.
  The checks of one call run in one short transaction on a connection of their own, so
  the request's rollback (a wrong password raises 401) never undoes a hit. It first
  takes a transaction-level advisory lock per (name, digest), in sorted order: two
  nodes counting the same key go in turn, so the limit is exact, and never deadlock.
  Expired rows are deleted by the privacy retention job (hourly), so a row lives at most
  its window (an hour at most) plus the job's period.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Sequence
from datetime import timedelta

from fastapi import Request
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from dozor.api.problems import Problem
from dozor.privacy import keys
from dozor.store.account_tables import rate_limit_hits
from dozor.store.db import create_engine

_ALL: weakref.WeakSet[RateLimit] = weakref.WeakSet()
LOCK_CLASS = 0x646F7A6F  # "dozo": the advisory locks' first key (two-key space)


class RateLimit:
    """At most ``limit`` hits per ``window`` seconds per key; memory bounded by ``keys``.
    ``name`` is stable: it marks the limit's rows in the database."""

    def __init__(self, name: str, limit: int, window: float, keys: int = 100_000) -> None:
        self.name = name
        self.limit = limit
        self.window = window
        self.keys = keys
        self._hits: dict[str, deque[float]] = {}
        _ALL.add(self)

    def hit(self, key: str, now: float | None = None) -> float | None:
        """Count a hit; None if allowed, else the seconds until one is."""
        now = time.monotonic() if now is None else now
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window - now
        hits.append(now)
        if len(self._hits) > self.keys:  # forget the stalest keys, never grow unbounded
            for stale in [k for k, v in self._hits.items() if not v][: self.keys // 10]:
                del self._hits[stale]
        return None

    def clear(self) -> None:
        self._hits.clear()


Checks = Sequence[tuple[RateLimit, str]]


class MemoryLimits:
    """Hits counted in this process (one server process: SQLite)."""

    async def hit(self, checks: Checks) -> float | None:
        """Count a hit on each (limit, key) up to the first refusal; None if all were
        allowed, else the seconds until that one is."""
        for limit, key in checks:
            if (wait := limit.hit(key)) is not None:
                return wait
        return None

    async def clear(self) -> None:
        """Forget every hit (tests)."""
        clear_all()


class SharedLimits:
    """Hits counted in ``rate_limit_hits``, shared by every node of the database."""

    def __init__(self, database: AsyncEngine) -> None:
        # Connections of their own, not from the app's pool: a check runs inside a request
        # that holds a pooled connection already, so a flood of limited requests taking
        # every pooled connection would each wait for a second one that never comes.
        # Unpooled, a check opens one and closes it (a few ms, on routes that hash a
        # password anyway); there are at most as many as the pool's requests at once.
        self.database = create_engine(
            database.url.render_as_string(hide_password=False), poolclass=NullPool)

    async def hit(self, checks: Checks) -> float | None:
        """As :meth:`MemoryLimits.hit`; the hits allowed commit even when one is refused."""
        async with self.database.begin() as conn:
            keyed = [(limit, await digest(conn, limit, key)) for limit, key in checks]
            for lock in sorted({int(found[:8], 16) - 2**31 for _, found in keyed}):
                await conn.execute(select(func.pg_advisory_xact_lock(LOCK_CLASS, lock)))
            for limit, found in keyed:
                if (wait := await _hit(conn, limit, found)) is not None:
                    return wait
        return None

    async def clear(self) -> None:
        """Forget every hit (tests)."""
        async with self.database.begin() as conn:
            await conn.execute(rate_limit_hits.delete())


async def digest(conn: AsyncConnection, limit: RateLimit, key: str) -> str:
    """The key as stored: keyed by the lookup key and the limit's name, so a row shows
    neither the address or IP nor which user's ``email_digest`` it is."""
    return await keys.digest_of(conn, f"ratelimit:{limit.name}", key)


async def _hit(conn: AsyncConnection, limit: RateLimit, found: str) -> float | None:
    h = rate_limit_hits.c
    live = (h.name == limit.name) & (h.key_digest == found) & (h.expires_at > func.now())
    count, first, now = (await conn.execute(
        select(func.count(), func.min(h.expires_at), func.now()).where(live))).one()
    if count >= limit.limit:
        return float((first - now).total_seconds())
    await conn.execute(insert(rate_limit_hits).values(
        name=limit.name, key_digest=found,
        expires_at=func.now() + timedelta(seconds=limit.window)))
    return None


Limits = MemoryLimits | SharedLimits


def limits_for(database: AsyncEngine) -> Limits:
    """The counter for the app of ``database``: shared on PostgreSQL, where several nodes
    may serve; in memory on SQLite, which has one server."""
    return SharedLimits(database) if database.dialect.name == "postgresql" else MemoryLimits()


async def enforce(request: Request, *checks: tuple[RateLimit, str],
                  detail: str = "too many requests; try again later") -> None:
    """Count a hit on each (limit, key) with the app's counter; raise 429 with
    Retry-After at the first refusal::

        await enforce(request, (LOGIN_BY_IP, f"ip:{ip}"), (LOGIN_BY_EMAIL, email))
    """
    limits: Limits = request.app.state.limits
    if (wait := await limits.hit(checks)) is not None:
        raise Problem(429, detail, headers={"Retry-After": str(int(wait) + 1)})


def clear_all() -> None:
    """Forget every hit of every limit in memory (tests start each case afresh; on
    PostgreSQL each test has a database of its own, and ``SharedLimits.clear`` empties
    the table within one)."""
    for limit in list(_ALL):
        limit.clear()
