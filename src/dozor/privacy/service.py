"""The privacy part's background work in a running server: carrying out open erasure
requests, at start (one cut short by a restart is finished) and then periodically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.privacy import erasure

log = logging.getLogger(__name__)


class PrivacyService:
    def __init__(self, database: AsyncEngine, every: timedelta) -> None:
        self.database = database
        self.every = every
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_once(self) -> None:
        done = await erasure.run_open(self.database, datetime.now(UTC))
        if done:
            log.info("%d erasure request(s) carried out", done)

    async def _forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a bad day for the database; the next round tries again
                log.exception("privacy job failed")
            await asyncio.sleep(self.every.total_seconds())
