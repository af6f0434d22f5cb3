"""Who read personal data: a GET on contacts, their points and consent ledger, the
delivery log or the members is in the audit log (``personal_data_read``, naming the
kind of data), once an hour per person and kind, so the log answers "who looked at this"
without a row for every page view. Writes are audited by their own routes.

The hour is remembered per process: several server processes may each record one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.api.deps import Caller, Connection
from dozor.api.security import Principal, client_ip
from dozor.privacy import audit
from dozor.store.db import write_transaction

EVERY = 3600.0  # seconds between two records of the same person reading the same kind
MAX_REMEMBERED = 10_000


class ReadLog:
    """When each (organisation, user, kind) was last recorded."""

    def __init__(self, every: float = EVERY) -> None:
        self.every = every
        self._last: dict[tuple[int, int | None, str], float] = {}

    def due(self, key: tuple[int, int | None, str], now: float) -> bool:
        """
        >>> log = ReadLog(every=60)
        >>> log.due((1, 2, "contacts"), 0.0), log.due((1, 2, "contacts"), 30.0)
        (True, False)
        >>> log.due((1, 2, "contacts"), 61.0), log.due((1, 3, "contacts"), 61.0)
        (True, True)
        """
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            return False
        if len(self._last) >= MAX_REMEMBERED:  # bounded: forget what is past its hour
            self._last = {k: t for k, t in self._last.items() if now - t < self.every}
        self._last[key] = now
        return True


READS = ReadLog()


def recorded(kind: str) -> Any:
    """A router dependency recording GETs of ``kind`` of personal data."""
    async def record_read(request: Request, caller: Caller, conn: Connection) -> None:
        if request.method == "GET" and _due(caller, kind):
            await _record(conn, caller, kind, request)
    dependency: Callable[..., Awaitable[None]] = record_read
    return Depends(dependency)


async def noted_by_page(request: Request, engine: AsyncEngine, caller: Principal,
                        kind: str) -> None:
    """The same for a dashboard page, which reads without the API's transaction."""
    if _due(caller, kind):
        async with write_transaction(engine) as conn:
            await _record(conn, caller, kind, request)


def _due(caller: Principal, kind: str) -> bool:
    return READS.due((caller.org_id, caller.user_id, kind), time.monotonic())


async def _record(conn: AsyncConnection, caller: Principal, kind: str,
                  request: Request) -> None:
    await audit.record(conn, "personal_data_read", org_id=caller.org_id,
                       user_id=caller.user_id, target=kind, ip=client_ip(request))
