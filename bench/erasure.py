"""Erasing a large organisation: total time, and the longest time the database is held.

A fresh SQLite database holds two organisations of the same size (monitors, their state,
raw results and hourly rollups). One is erased by ``privacy.erasure`` (bounded
transactions, raw results a few hundred monitors at a time); the other, as the baseline in
the same run, by the naive way: one ``DELETE`` of the organisation, its rows following by
``ON DELETE CASCADE`` in a single transaction. SQLite has one writer, so the longest
transaction is how long every check result, ping and message waits behind the erasure.
Prints a table and writes ``bench/out/erasure.json``.

    python -m bench.erasure [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from dozor.privacy import erasure, keys
from dozor.settings import Settings
from dozor.store import tables as t
from dozor.store.db import create_engine
from dozor.store.migrate import upgrade

OUT = Path(__file__).parent / "out"


def fill(path: Path, org_id: int, monitors: int, results: int) -> None:
    stamp = datetime.now(UTC).isoformat(sep=" ")
    first = (org_id - 2) * monitors + 1
    ids = range(first, first + monitors)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO organizations (id, slug, name, plan, created_at, sms_credits) "
                   "VALUES (?, ?, ?, 'trial', ?, 50)", (org_id, f"org-{org_id}",
                                                         f"Organisation {org_id}", stamp))
        db.executemany(
            "INSERT INTO monitors (id, org_id, name, kind, config, interval_ms, "
            "retry_interval_ms, timeout_ms, confirm_after, recover_after, tags, paused, "
            "revision, created_at, updated_at) VALUES (?, ?, ?, 'tcp', ?, 60000, 20000, "
            "10000, 3, 1, '[]', 0, 1, ?, ?)",
            ((i, org_id, f"service-{i}", json.dumps({"host": "127.0.0.1", "port": 9}), stamp,
              stamp) for i in ids))
        db.executemany("INSERT INTO monitor_state (monitor_id, state, failures, successes, "
                       "history, history_len, flapping) VALUES (?, 'up', 0, 0, 0, 0, 0)",
                       ((i,) for i in ids))
        start = 1_764_547_200_000
        db.executemany("INSERT INTO results (monitor_id, at, location_id, status, latency_ms) "
                       "VALUES (?, ?, 1, 1, 20)",
                       ((i, start + n * 60_000) for i in ids for n in range(results)))
        db.executemany("INSERT INTO rollups_hourly (monitor_id, location_id, bucket, checks, "
                       "up, timed, latency_sum, histogram) VALUES (?, 1, ?, 60, 60, 60, 1200, '')",
                       ((i, 1_764_547_200 + h * 3600) for i in ids for h in range(24)))


class Transactions:
    """The duration of every transaction on an engine, from BEGIN to COMMIT."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._began: dict[int, float] = {}

    def attach(self, engine: Any) -> None:
        event.listen(engine.sync_engine, "begin", self._begin)
        event.listen(engine.sync_engine, "commit", self._commit)

    def _begin(self, connection: Any) -> None:
        self._began[id(connection)] = time.perf_counter()

    def _commit(self, connection: Any) -> None:
        began = self._began.pop(id(connection), None)
        if began is not None:
            self.durations.append(time.perf_counter() - began)


def prepare(tmp: str, monitors: int, results: int) -> str:
    """A migrated database with the two organisations (blocking: before the event loop)."""
    path = Path(tmp) / "dozor.db"
    url = f"sqlite+aiosqlite:///{path}"
    keys.use(Settings.model_validate({"data_dir": tmp, "database_url": url}))
    upgrade(url)
    for org in (2, 3):
        fill(path, org, monitors, results)
    return url


async def measure(url: str, monitors: int) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        rows = {}
        async with engine.connect() as conn:
            for org in (2, 3):
                rows[org] = int(await conn.scalar(select(func.count()).select_from(
                    t.results).join(t.monitors).where(t.monitors.c.org_id == org)) or 0)
        watched = Transactions()
        watched.attach(engine)
        started = time.perf_counter()
        report = await erasure.erase_organisation(engine, 2, now=datetime.now(UTC),
                                                  reason="bench")
        ours = time.perf_counter() - started, max(watched.durations), len(watched.durations)
        watched.durations.clear()
        started = time.perf_counter()
        async with engine.begin() as conn:  # the naive way: one cascading DELETE
            await conn.execute(t.organizations.delete().where(t.organizations.c.id == 3))
        naive = time.perf_counter() - started, max(watched.durations)
    finally:
        await engine.dispose()
    return {"monitors": monitors, "results_per_org": rows[2], "rows_erased": report.total,
            "erasure_s": ours[0], "erasure_longest_transaction_s": ours[1],
            "erasure_transactions": ours[2], "naive_s": naive[0],
            "naive_longest_transaction_s": naive[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    args = parser.parse_args()
    monitors, results = (200, 300) if args.quick else (2_000, 300)
    with tempfile.TemporaryDirectory() as tmp:
        url = prepare(tmp, monitors, results)
        figures = asyncio.run(measure(url, monitors))
    OUT.mkdir(exist_ok=True)
    (OUT / "erasure.json").write_text(json.dumps(figures, indent=2))
    f = figures
    print(f"{f['monitors']:,} monitors, {f['results_per_org']:,} raw results an organisation")
    print("| run | total | longest transaction | transactions |")
    print("|---|---|---|---|")
    print(f"| one cascading DELETE (baseline) | {f['naive_s']:.2f} s | "
          f"{f['naive_longest_transaction_s'] * 1000:.0f} ms | 1 |")
    print(f"| privacy.erasure | {f['erasure_s']:.2f} s | "
          f"{f['erasure_longest_transaction_s'] * 1000:.0f} ms | {f['erasure_transactions']} |")
    hold = f["erasure_longest_transaction_s"] / f["naive_longest_transaction_s"]
    print(f"longest hold: {hold:.0%} of the baseline's; "
          f"total time {f['erasure_s'] / f['naive_s']:.2f}x")


if __name__ == "__main__":
    main()
