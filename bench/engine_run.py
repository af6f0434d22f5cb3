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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import uvloop
from sqlalchemy import insert

from dozor.engine.engine import Engine
from dozor.engine.rollup_job import roll_up
from dozor.privacy import keys
from dozor.settings import Settings
from dozor.store import tables as t
from dozor.store.db import create_engine
from dozor.store.migrate import upgrade


def database_bytes(path: Path) -> int:
    """Bytes in use, as a fresh reader sees the database (WAL included, no checkpoint)."""
    with sqlite3.connect(path) as connection:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        free = connection.execute("PRAGMA freelist_count").fetchone()[0]
        size = connection.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def results_table_bytes_per_row(path: Path) -> float:
    """The results table's own size per row, pages and their free space included."""
    with sqlite3.connect(path) as connection:
        size = connection.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'results'"
                                  ).fetchone()[0]
        rows = connection.execute("SELECT count(*) FROM results").fetchone()[0]
    return float(size) / max(rows, 1)


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
    engine = Engine(settings, database)
    await engine.start()
    await asyncio.sleep(interval)  # every monitor placed and checked once
    await drained(engine)  # the first results are all state changes: let them be written
    start = await snapshot(engine, path)
    await asyncio.sleep(seconds)
    end = await snapshot(engine, path)
    await engine.stop()
    # Roll up everything stored (as if the hour had ended) to price a rollup row.
    await roll_up(database, datetime.now(UTC) + timedelta(hours=2))
    await database.dispose()
    checks = end["written"] - start["written"]
    lags = sorted(list(engine.scheduler.lag.samples)[int(start["lags"]):int(end["lags"])])
    return {
        "checks": checks, "cpu_s": end["cpu"] - start["cpu"],
        "wall_s": end["wall"] - start["wall"],
        "lag_p50_ms": 1000 * lags[len(lags) // 2] if lags else 0.0,
        "lag_p99_ms": 1000 * lags[int(len(lags) * 0.99)] if lags else 0.0,
        "rss_bytes": float(process.memory_info().rss),
        "db_bytes_per_result": (end["bytes"] - start["bytes"]) / max(checks, 1)
        + rollup_bytes_per_result(path, interval),
        "results_table_bytes_per_row": results_table_bytes_per_row(path),
        "failed_share": failed_share(path),
    }


async def drained(engine: Engine, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while engine.writer.queued > engine.settings.flush_batch and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)


async def snapshot(engine: Engine, path: Path) -> dict[str, float]:
    size = await asyncio.to_thread(database_bytes, path)
    return {"written": engine.writer.written, "lags": len(engine.scheduler.lag.samples),
            "cpu": time.process_time(), "wall": time.monotonic(), "bytes": size}


def rollup_bytes_per_result(path: Path, interval: float) -> float:
    """Rollups are written once per monitor and hour (and day): their share of a result."""
    with sqlite3.connect(path) as connection:
        sizes = dict(connection.execute(
            "SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'rollups_%' GROUP BY name"))
        rows = {name: connection.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                for name in sizes}
    per_hour = sizes["rollups_hourly"] / max(rows["rollups_hourly"], 1)
    per_day = sizes["rollups_daily"] / max(rows["rollups_daily"], 1)
    results_per_hour = 3600 / interval
    return (per_hour + per_day / 24) / results_per_hour


def failed_share(path: Path) -> float:
    """Failed checks would make the figures look cheaper than they are: report them."""
    with sqlite3.connect(path) as connection:
        failed, total = connection.execute(
            "SELECT sum(status = 0), count(*) FROM results").fetchone()
    return float(failed or 0) / max(total, 1)


if __name__ == "__main__":
    url, count = sys.argv[1], int(sys.argv[2])
    interval, seconds, data_dir = float(sys.argv[3]), float(sys.argv[4]), Path(sys.argv[5])
    keys.use(Settings.model_validate({"data_dir": data_dir}))  # migrations seal with it
    upgrade(f"sqlite:///{data_dir / 'dozor.db'}")
    add_monitors(data_dir / "dozor.db", url, count, int(interval * 1000))
    print(json.dumps(uvloop.run(measure(url, count, interval, seconds, data_dir))))
