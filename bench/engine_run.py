"""One measured run of the whole engine: N HTTP monitors against the local target.

Schedules, checks, evaluates, persists and rolls up exactly as `dozor serve` does, on a
fresh SQLite database. Measures over the steady part of the run (after the first
interval, when every monitor has been placed): checks, CPU seconds, scheduler lag,
memory per monitor, database bytes per stored result. Prints one JSON line.

    python -m bench.engine_run URL MONITORS INTERVAL SECONDS DATA_DIR
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import uvloop
from sqlalchemy import insert

from dozor.engine.engine import Engine
from dozor.settings import Settings
from dozor.store import tables as t
from dozor.store.db import create_engine
from dozor.store.migrate import upgrade


def database_bytes(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        free = connection.execute("PRAGMA freelist_count").fetchone()[0]
        size = connection.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def add_monitors(path: Path, url: str, count: int, interval_ms: int) -> None:
    now = datetime.now(UTC)
    rows = [{"org_id": 1, "name": f"m{i}", "kind": "http", "config": {"url": f"{url}/m/{i}"},
             "interval_ms": interval_ms, "retry_interval_ms": interval_ms,
             "timeout_ms": min(10_000, interval_ms), "confirm_after": 3, "recover_after": 1,
             "tags": [], "paused": False, "revision": 1, "created_at": now, "updated_at": now}
            for i in range(count)]

    async def write() -> None:
        database = create_engine(f"sqlite+aiosqlite:///{path}")
        async with database.begin() as connection:
            await connection.execute(insert(t.monitors), rows)
            await connection.execute(insert(t.monitor_state), [
                {"monitor_id": i + 1, "state": "unknown"} for i in range(count)])
        await database.dispose()

    asyncio.run(write())


async def measure(url: str, monitors: int, interval: float, seconds: float,
                  data_dir: Path) -> dict[str, float]:
    process = psutil.Process()
    path = data_dir / "dozor.db"
    settings = Settings.model_validate({"data_dir": data_dir, "reload_interval": 3600})
    database = create_engine(settings.resolved_database_url)
    rss_before = process.memory_info().rss
    engine = Engine(settings, database)
    await engine.start()
    await asyncio.sleep(interval)  # every monitor placed and checked once
    bytes_start, written_start = database_bytes(path), engine.writer.written
    lag_start = len(engine.scheduler.lag.samples)
    cpu_start, wall_start = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu_start, time.monotonic() - wall_start
    rss_after = process.memory_info().rss
    await engine.stop()
    await database.dispose()
    checks = engine.writer.written - written_start
    lags = sorted(list(engine.scheduler.lag.samples)[lag_start:])
    return {
        "checks": checks, "cpu_s": cpu, "wall_s": wall,
        "lag_p50_ms": 1000 * lags[len(lags) // 2] if lags else 0.0,
        "lag_p99_ms": 1000 * lags[int(len(lags) * 0.99)] if lags else 0.0,
        "rss_per_monitor_bytes": (rss_after - rss_before) / monitors,
        "db_bytes_per_result": (database_bytes(path) - bytes_start) / max(checks, 1),
    }


if __name__ == "__main__":
    url, count = sys.argv[1], int(sys.argv[2])
    interval, seconds, data_dir = float(sys.argv[3]), float(sys.argv[4]), Path(sys.argv[5])
    upgrade(f"sqlite:///{data_dir / 'dozor.db'}")
    add_monitors(data_dir / "dozor.db", url, count, int(interval * 1000))
    print(json.dumps(uvloop.run(measure(url, count, interval, seconds, data_dir))))
