"""Between server nodes on PostgreSQL: what reached one node and is another's to judge.

A probe's results and a heartbeat ping arrive at whichever node the request reached, but
a monitor's state is decided by the node holding it (``engine.cluster``). The node that
stored them passes them on with PostgreSQL's NOTIFY, sent inside the transaction that
stored them, so the holder never hears of anything that was not stored; every node
LISTENs and takes what it holds. A notice nobody holds (the monitor is changing hands at
that moment) is lost: the holder's next check, or the probe's next result, decides then.

Only what a decision needs travels (a result's time, verdict, latency, error and a short
message), in notices under PostgreSQL's 8,000-byte limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.probe.wire import ProbeResult

log = logging.getLogger(__name__)
CHANNEL = "dozor_relay"
MAX_PAYLOAD = 7_000  # bytes; PostgreSQL refuses a notice of 8,000
ANSWER_WITHIN = 5.0  # seconds the listening connection has to answer a check
MESSAGE = 200  # characters of a result's message that travel: the reason in an alert

OnResults = Callable[[str, list[ProbeResult]], None]
OnPing = Callable[[int, str], None]


async def send_results(connection: AsyncConnection, location: str,
                       results: Sequence[ProbeResult]) -> None:
    """Pass probe results on, with ``connection``'s transaction."""
    for chunk in _chunks([_brief(r) for r in results]):
        await _notify(connection, {"results": chunk, "location": location})


async def send_ping(connection: AsyncConnection, monitor_id: int, kind: str) -> None:
    await _notify(connection, {"ping": monitor_id, "kind": kind})


async def _notify(connection: AsyncConnection, message: dict[str, Any]) -> None:
    payload = json.dumps(message, separators=(",", ":"))
    await connection.execute(select(func.pg_notify(CHANNEL, payload)))


def _brief(result: ProbeResult) -> dict[str, Any]:
    return result.model_dump(include={"monitor_id", "at_ms", "ok", "latency_ms", "error"}) | {
        "message": (result.message or "")[:MESSAGE] or None}


def _chunks(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    size = 0
    for item in items:
        length = len(json.dumps(item, separators=(",", ":"))) + 1
        if chunk and size + length > MAX_PAYLOAD:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += length
    if chunk:
        yield chunk


class Listener:
    """This node's ear: one connection LISTENing on the channel (opened again by
    ``ensure`` when the database dropped it)."""

    def __init__(self, database: AsyncEngine, on_results: OnResults, on_ping: OnPing) -> None:
        self.database = database
        self.on_results = on_results
        self.on_ping = on_ping
        self._connection: AsyncConnection | None = None
        self._driver: Any = None  # the asyncpg connection under it

    async def ensure(self) -> None:
        """Listening, on a connection that answers (one a NAT or a proxy cut silently
        still looks open, and would hear nothing ever again)."""
        if self._driver is not None and not self._driver.is_closed():
            try:
                await asyncio.wait_for(self._driver.fetchval("SELECT 1"), ANSWER_WITHIN)
                return
            except Exception:
                log.warning("the relay's connection stopped answering; listening again")
                await self.stop(dead=True)
        await self.stop()
        connection = await self.database.connect()
        try:
            raw = await connection.get_raw_connection()
            self._driver = raw.driver_connection
            await self._driver.add_listener(CHANNEL, self._heard)
        except BaseException:
            await connection.close()
            self._driver = None
            raise
        self._connection = connection

    async def stop(self, dead: bool = False) -> None:
        """Stop listening. A ``dead`` connection is dropped, not returned to the pool
        (returning it would wait on a socket that never answers)."""
        if self._connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(ANSWER_WITHIN):
                    if dead:
                        await self._connection.invalidate()
                    else:
                        await self._driver.remove_listener(CHANNEL, self._heard)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(ANSWER_WITHIN):
                    await self._connection.close()
        self._connection = self._driver = None

    def _heard(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            if "ping" in message:
                self.on_ping(int(message["ping"]), str(message["kind"]))
            else:
                self.on_results(str(message["location"]),
                                [ProbeResult.model_validate(r) for r in message["results"]])
        except Exception:  # a bad notice must not take the listener down
            log.exception("a relayed notice could not be read")
