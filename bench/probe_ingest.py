"""Results a server ingests from probes: ``POST /probe/v1/results`` on one core, persisted
and rolled up.

A fresh SQLite database holds 1,000 monitors assigned to location ``waw`` and a probe of
that location, and the rollup mark where a running server's job leaves it. Batches of
1,000 results are posted to the app in-process (the app's lifespan runs: its engine
evaluates each result, as in ``dozor serve``), then the rollup job runs as it will once
their hour has ended. Two runs, each on its own database: results of the hour now open
(delivered on time), and results of an hour rolled up already (a probe's buffer delivered
late: each stored result's hour is recorded, and the job makes it again). CPU time of the
one process covers validation, storage, evaluation and the rollups (and the client's
JSON, so it is an upper bound). Baseline in the same run: the same rows inserted straight
into ``results`` with SQLAlchemy, batch by batch, no HTTP, no validation, no rollups.

    python -m bench.probe_ingest [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from dozor.api.security import digest
from dozor.app import create_app
from dozor.engine.rollup_job import roll_up
from dozor.privacy import keys
from dozor.settings import Settings
from dozor.store import tables as t
from dozor.store.db import create_engine
from dozor.store.migrate import upgrade

OUT = Path(__file__).parent / "out"
TOKEN = "dzp_bench-probe-token-0123456789abcdef"
MONITORS = 1_000
BATCH = 1_000


def prepare(data_dir: Path) -> str:
    url = f"sqlite+aiosqlite:///{data_dir / 'dozor.db'}"
    upgrade(url)  # sealing with the key main() loaded
    stamp = datetime.now(UTC).isoformat(sep=" ")
    with sqlite3.connect(data_dir / "dozor.db") as db:
        db.execute("INSERT INTO locations (name, created_at) VALUES ('waw', ?)", (stamp,))
        waw = db.execute("SELECT id FROM locations WHERE name = 'waw'").fetchone()[0]
        db.execute("INSERT INTO probes (name, location_id, token_hash, prefix, created_at, "
                   "dropped) VALUES ('waw-1', ?, ?, 'dzp_bench', ?, 0)",
                   (waw, digest(TOKEN), stamp))
        db.executemany(
            "INSERT INTO monitors (id, org_id, name, kind, config, interval_ms, "
            "retry_interval_ms, timeout_ms, confirm_after, recover_after, tags, paused, "
            "revision, created_at, updated_at, locations) VALUES (?, 1, ?, 'tcp', ?, 60000, "
            "20000, 10000, 3, 1, '[]', 0, 1, ?, ?, '[\"waw\"]')",
            ((i, f"service-{i}", json.dumps({"host": "127.0.0.1", "port": 9}), stamp, stamp)
             for i in range(1, MONITORS + 1)))
    return url


def batches(count: int, start_ms: int) -> list[list[dict[str, Any]]]:
    """``count`` batches, each one result for every monitor a second apart."""
    return [[{"monitor_id": i, "at_ms": start_ms + b * 1_000 + i, "ok": True,
              "latency_ms": 20.0 + i % 7} for i in range(1, MONITORS + 1)]
            for b in range(count)]


async def ours(url: str, data_dir: Path, work: list[list[dict[str, Any]]],
               now: datetime) -> dict[str, float]:
    app = create_app(Settings.model_validate({
        "data_dir": data_dir, "database_url": url, "log_level": "warning",
        "reload_interval": "1h", "flush_interval": "1h"}))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://dozor.bench") as client:
        await roll_up(app.state.database, now)  # the mark, as a running server's job left it
        headers = {"Authorization": f"Bearer {TOKEN}"}
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in work:
            answer = await client.post("/probe/v1/results", headers=headers,
                                       json={"results": batch, "dropped": 0})
            assert answer.status_code == 200 and answer.json()["stored"] == len(batch), \
                answer.text[:300]
        # The job once the open hour has ended (two hours on: past its grace whenever).
        await roll_up(app.state.database, now + timedelta(hours=2))
        return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}


async def bare(url: str, work: list[list[dict[str, Any]]]) -> dict[str, float]:
    engine = create_engine(url)
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in work:
            async with engine.begin() as conn:
                await conn.execute(insert(t.results), [
                    {"monitor_id": r["monitor_id"], "at": r["at_ms"], "location_id": 1,
                     "status": 1, "latency_ms": round(r["latency_ms"])} for r in batch])
        return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 batches instead of 60")
    count = 10 if parser.parse_args().quick else 60
    now = datetime.now(UTC)
    this_hour = int(now.timestamp()) // 3600 * 3600 * 1000
    # Two hours back is behind the mark whatever the minute (the mark trails by 2 minutes).
    rolled_hour = this_hour - 2 * 3_600_000
    measured = {}
    # One instance key for both runs, in a folder that outlives them: a process keeps the
    # first key it loads, and its watcher would look for the file in a removed folder.
    with tempfile.TemporaryDirectory() as home:
        keys.use(Settings.model_validate({"data_dir": home}))
        for name, start in (("on_time", this_hour), ("late", rolled_hour)):
            with tempfile.TemporaryDirectory() as folder:
                data_dir = Path(folder)
                url = prepare(data_dir)
                measured[name] = asyncio.run(ours(url, data_dir, batches(count, start), now))
                if name == "on_time":
                    # The baseline's rows go to location 1 too, an hour earlier: no clash.
                    baseline = asyncio.run(bare(url, batches(count, start - 3_600_000)))
    results = count * MONITORS
    figures = {"results": results, "ours": measured["on_time"], "late": measured["late"],
               "bare": baseline}
    OUT.mkdir(exist_ok=True)
    (OUT / "probe_ingest.json").write_text(json.dumps(figures, indent=2))
    print(f"{results:,} results from one probe, {MONITORS:,} monitors, batches of {BATCH:,}")
    print("| run | results/s (wall) | CPU µs per result | per CPU s vs bare |")
    print("|---|---|---|---|")
    for name, f in (("bare INSERT into results (baseline)", baseline),
                    ("POST /probe/v1/results, evaluated, rolled up", measured["on_time"]),
                    ("the same, of an hour rolled up already (made again)",
                     measured["late"])):
        print(f"| {name} | {results / f['wall']:,.0f} | {f['cpu'] / results * 1e6:.0f} | "
              f"{baseline['cpu'] / f['cpu']:.0%} |")


if __name__ == "__main__":
    main()
