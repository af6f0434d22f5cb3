"""A dead server node's monitors checked again: how long after its death.

Two ``dozor serve`` processes share a fresh PostgreSQL database (default settings but the
interval: ``DOZOR_NODE_LEASE`` 10 s) and ``MONITORS`` HTTP monitors on a local target
(``bench.target``). Once each node holds half of them and every monitor has been checked,
one node is killed (SIGKILL: no goodbye, its leases must run out). Measured, for each
monitor the dead node held:

- *death to next check*: from the kill to the monitor's first check by the survivor;
- *late by*: that check's time minus when the dead node would have checked it (its last
  check plus the interval), i.e. how far the schedule slipped.

The baseline is the check interval itself, in the same run: the issue's target is a
takeover under two intervals.

    python -m bench.takeover [--quick] [--interval 30] [--monitors 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select

from dozor.privacy import keys
from dozor.settings import Settings
from dozor.store import nodes
from dozor.store import tables as t
from dozor.store.db import create_engine
from dozor.store.migrate import upgrade

OUT = Path(__file__).parent / "out"
ROOT = Path(__file__).resolve().parents[1]
ADMIN = os.environ.get("DOZOR_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def start(arguments: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, *arguments, cwd=ROOT, env={**env, "PYTHONPATH": f"{ROOT}/src"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)


async def run(monitors: int, interval: float, data_dir: Path) -> dict[str, Any]:
    name = f"dozor_bench_{uuid.uuid4().hex[:8]}"
    await admin(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    processes: list[asyncio.subprocess.Process] = []
    try:
        keys.use(Settings.model_validate({"data_dir": data_dir}))
        await asyncio.to_thread(upgrade, url)
        port = free_port()
        target = await start(["-m", "bench.target", str(port)], dict(os.environ))
        processes.append(target)
        assert target.stdout is not None
        await target.stdout.readline()  # ready
        database = create_engine(url)
        now = datetime.now(UTC)
        async with database.begin() as connection:
            await connection.execute(insert(t.monitors), [
                {"org_id": 1, "name": f"site-{i}", "kind": "http",
                 "config": {"url": f"http://127.0.0.1:{port}/{i}"},
                 "interval_ms": int(interval * 1000), "retry_interval_ms": 1000,
                 "timeout_ms": 5000, "confirm_after": 3, "recover_after": 1, "tags": [],
                 "paused": False, "revision": 1, "created_at": now, "updated_at": now}
                for i in range(monitors)])
            ids = (await connection.execute(select(t.monitors.c.id))).scalars().all()
            await connection.execute(insert(t.monitor_state),
                                     [{"monitor_id": i, "state": "unknown"} for i in ids])
        env = {**os.environ, "DOZOR_DATABASE_URL": url, "DOZOR_PRIVATE_TARGETS": "allow",
               "DOZOR_LOG_LEVEL": "warning",
               keys.SETTING: ",".join(k.decode() for k in keys.current().keys)}
        nodes = []
        for node in ("a", "b"):
            nodes.append(await start(["-c", "from dozor.cli import main; main()", "serve"],
                                     env | {"DOZOR_PORT": str(free_port()),
                                            "DOZOR_DATA_DIR": str(data_dir / node)}))
            processes.append(nodes[-1])
        await until(database, lambda held, checked: len(set(held.values())) == 2
                    and len(held) == monitors and checked == monitors, 120 + interval)
        held = await leases(database)
        async with database.connect() as connection:  # a node is named host:pid
            victim_id = await connection.scalar(select(t.server_nodes.c.id).where(
                t.server_nodes.c.name.endswith(f":{nodes[0].pid}")))
        victim = [m for m, n in held.items() if n == victim_id]
        last = await last_checks(database, victim)
        nodes[0].send_signal(signal.SIGKILL)
        killed = time.time()
        await nodes[0].wait()
        deadline = killed + 3 * interval + 60
        while time.time() < deadline:
            after = await first_checks_after(database, victim, int(killed * 1000))
            if len(after) == len(victim):
                break
            await asyncio.sleep(0.5)
        await database.dispose()
        delays = sorted(after[m] / 1000 - killed for m in after)
        late = sorted(max(0.0, (after[m] - last[m]) / 1000 - interval) for m in after)
        return {"monitors": monitors, "interval_s": interval, "victim_monitors": len(victim),
                "taken_over": len(after),
                "death_to_check_p50_s": round(delays[len(delays) // 2], 2),
                "death_to_check_max_s": round(delays[-1], 2),
                "max_in_intervals": round(delays[-1] / interval, 2),
                "late_by_p50_s": round(late[len(late) // 2], 2),
                "late_by_max_s": round(late[-1], 2)}
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(15):
                        await process.wait()
                except TimeoutError:
                    process.kill()
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def until(database: Any, ready: Any, seconds: float) -> None:
    deadline = time.time() + seconds
    while True:
        held = await leases(database)
        async with database.connect() as connection:
            checked = await connection.scalar(
                select(func.count(func.distinct(t.results.c.monitor_id))))
        if ready(held, checked):
            return
        if time.time() > deadline:
            raise SystemExit(f"nodes not ready: {len(held)} leases, {checked} checked")
        await asyncio.sleep(0.5)


async def leases(database: Any) -> dict[int, int]:
    async with database.connect() as connection:
        return await nodes.holders(connection)


async def last_checks(database: Any, ids: list[int]) -> dict[int, int]:
    async with database.connect() as connection:
        rows = (await connection.execute(
            select(t.results.c.monitor_id, func.max(t.results.c.at))
            .where(t.results.c.monitor_id.in_(ids)).group_by(t.results.c.monitor_id))).all()
    return {row[0]: row[1] for row in rows}


async def first_checks_after(database: Any, ids: list[int], since_ms: int) -> dict[int, int]:
    async with database.connect() as connection:
        rows = (await connection.execute(
            select(t.results.c.monitor_id, func.min(t.results.c.at))
            .where(t.results.c.monitor_id.in_(ids), t.results.c.at > since_ms)
            .group_by(t.results.c.monitor_id))).all()
    return {row[0]: row[1] for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s interval, 40 monitors")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds")
    parser.add_argument("--monitors", type=int, default=200)
    options = parser.parse_args()
    interval = 10.0 if options.quick else options.interval
    monitors = 40 if options.quick else options.monitors
    with tempfile.TemporaryDirectory() as folder:
        figures = asyncio.run(run(monitors, interval, Path(folder)))
    OUT.mkdir(exist_ok=True)
    (OUT / "takeover.json").write_text(json.dumps(figures, indent=2))
    print(f"{figures['victim_monitors']} monitors of the killed node, every "
          f"{interval:g} s (lease 10 s): checked again by the survivor "
          f"{figures['death_to_check_p50_s']} s (p50) / {figures['death_to_check_max_s']} s "
          f"(max) after the kill = {figures['max_in_intervals']} intervals at most; "
          f"late against the dead node's schedule by {figures['late_by_p50_s']} s (p50) / "
          f"{figures['late_by_max_s']} s (max)")


if __name__ == "__main__":
    main()
