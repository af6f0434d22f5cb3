"""One measured run of alert delivery: outbox -> guard -> dispatcher -> webhook channel ->
local provider, on SQLite, in this process (pinned to one core by ``bench.notify``).

    python -m bench.notify_run PROVIDER_URL DATA_DIR MESSAGES RATE SECONDS

Prints one JSON line: a burst (every message queued at once: throughput) and a paced run
(RATE messages a second for SECONDS: latency from enqueue to accepted-and-recorded).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import Any

import uvloop
from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dozor.notify import channels as _channels  # noqa: F401  (registers the kinds)
from dozor.notify.channelset import load_channels
from dozor.notify.dispatcher import Dispatcher
from dozor.notify.outbox import NewMessage, enqueue
from dozor.outbound import Outbound
from dozor.privacy import keys
from dozor.store import notify_tables as n
from dozor.store.db import create_engine, write_transaction
from dozor.store.migrate import upgrade


async def prepare(database: AsyncEngine, url: str, points: int) -> list[int]:
    """One contact with ``points`` confirmed webhook points, written directly: through
    ``contacts.add_point`` the bulk detector would (rightly) suspend such an account."""
    now = datetime.now(UTC)
    async with database.begin() as connection:
        contact = (await connection.execute(insert(n.contacts).values(
            org_id=1, name="bench", timezone="UTC", language="en", is_owner=False,
            created_at=now).returning(n.contacts.c.id))).scalar_one()
        await connection.execute(insert(n.contact_points), [{
            "org_id": 1, "contact_id": contact, "kind": "webhook",
            "address": await keys.personal(connection, 1, f"{url}/hook/{i}"),
            "address_digest": await keys.digest_of(connection, "webhook", f"{url}/hook/{i}"),
            "secret": "bench-secret", "priority": 0,
            "events": ["down"], "outside_hours": "hold", "escalation_minutes": 0,
            "confirmed_at": now, "unsubscribe_token": secrets.token_hex(12),
            "created_at": now} for i in range(points)])
        ids = (await connection.execute(select(n.contact_points.c.id))).scalars()
        return list(ids)


def batch(points: list[int], start: int, count: int) -> list[NewMessage]:
    now = datetime.now(UTC)
    return [NewMessage(1, None, points[(start + i) % len(points)], "down", f"m{start + i}",
                       f"DOWN: site-{start + i}", "connection refused", "en", now)
            for i in range(count)]


async def settled(database: AsyncEngine) -> int:
    async with database.connect() as connection:
        return int((await connection.execute(select(func.count()).where(
            n.messages.c.status.in_(("queued", "sending"))))).scalar_one())


async def wait_settled(database: AsyncEngine) -> None:
    async with asyncio.timeout(600):
        while await settled(database):  # noqa: ASYNC110 (polling the database is the point)
            await asyncio.sleep(0.05)


async def burst(database: AsyncEngine, dispatcher: Dispatcher, points: list[int],
                count: int) -> dict[str, float]:
    async with database.begin() as connection:
        await enqueue(connection, batch(points, 0, count))
    wall, cpu = time.perf_counter(), time.process_time()
    dispatcher.wake()
    await wait_settled(database)
    return {"burst_messages": count, "burst_wall_s": time.perf_counter() - wall,
            "burst_cpu_s": time.process_time() - cpu}


async def paced(database: AsyncEngine, dispatcher: Dispatcher, points: list[int],
                rate: int, seconds: float, offset: int) -> dict[str, float]:
    per_tick = max(1, rate // 100)  # a batch every 10 ms
    wall, cpu = time.perf_counter(), time.process_time()
    sent = 0
    while sent < rate * seconds:
        async with write_transaction(database) as connection:
            await enqueue(connection, batch(points, offset + sent, per_tick))
        dispatcher.wake()  # as the result writer does after a state change commits
        sent += per_tick
        await asyncio.sleep(max(0.0, wall + sent / rate - time.perf_counter()))
    await wait_settled(database)
    result = {"paced_messages": sent, "paced_wall_s": time.perf_counter() - wall,
              "paced_cpu_s": time.process_time() - cpu}
    return result | await latencies(database, offset)


async def latencies(database: AsyncEngine, offset: int) -> dict[str, float]:
    m = n.messages.c
    async with database.connect() as connection:
        rows = (await connection.execute(select(m.created_at, m.accepted_at, m.status)
                                         .where(m.id > offset))).all()
    waits = sorted((a - c).total_seconds() * 1000 for c, a, _ in rows if a is not None)
    failed = sum(1 for *_, status in rows if status != "delivered")
    return {"latency_p50_ms": waits[len(waits) // 2],
            "latency_p99_ms": waits[min(len(waits) - 1, int(len(waits) * 0.99))],
            "latency_max_ms": waits[-1], "not_delivered": failed}


async def main(url: str, data_dir: str, count: int, rate: int, seconds: float) -> None:
    database_url = f"sqlite:///{data_dir}/bench.db"
    keys.install(keys.Keyring([Fernet.generate_key()], "the bench's key"))
    await asyncio.to_thread(upgrade, database_url)
    database = create_engine(database_url)
    outbound = Outbound("dozor-bench")

    async def ignore(_: object) -> None:
        return None
    points = await prepare(database, url, count)
    channels = await load_channels(database, outbound, ignore, "")
    dispatcher = Dispatcher(database, channels)
    running = asyncio.create_task(dispatcher.run())
    result: dict[str, Any] = await burst(database, dispatcher, points, count)
    result |= await paced(database, dispatcher, points, rate, seconds, count)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await outbound.close()
    await database.dispose()
    print(json.dumps(result))


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                    float(sys.argv[5])))
