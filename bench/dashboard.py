"""The dashboard's overview with 10,000 monitors: server time and bytes of the first screen.

A fresh SQLite database holds 10,000 monitors with their state, 90 days of daily rollups
and 24 hours of hourly ones each (1.14 million rollup rows, as a year-old installation
has), a user and a session. The app is called in-process (no network: what is measured
is the server's work for a request). Baseline in the same run: the JSON API's first page
of monitors (`GET /api/v1/monitors?limit=50`), which reads the same table without
uptime bars, sparklines or HTML. Prints a table and writes `bench/out/dashboard.json`.

    python -m bench.dashboard [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvloop

from dozor.api.security import digest, hash_password
from dozor.app import create_app
from dozor.core.rollups import DAY, HOUR, Rollup
from dozor.privacy import keys
from dozor.settings import Settings
from dozor.store.migrate import upgrade
from dozor.store.queries import rollup_row

OUT = Path(__file__).parent / "out"
SESSION = "dzs_bench-session-token-0123456789abcdef"
STATES = ("up",) * 96 + ("down", "pending", "paused", "maintenance")


def fill(path: Path, monitors: int) -> None:
    """Monitors, states, rollups, a user with a session: straight into SQLite."""
    now = datetime.now(UTC)
    stamp = now.isoformat(sep=" ")
    today = int(now.timestamp()) // DAY * DAY
    hour = int(now.timestamp()) // HOUR * HOUR
    sample = Rollup()
    for latency in (80.0, 95.0, 120.0, 300.0):
        sample.add(True, latency)
    template = rollup_row((0, 1, 0), sample)
    columns = ", ".join(template)
    marks = ", ".join(f":{name}" for name in template)
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO monitors (id, org_id, name, kind, config, interval_ms, "
            "retry_interval_ms, timeout_ms, confirm_after, recover_after, tags, paused, "
            "revision, created_at, updated_at) VALUES (?, 1, ?, 'http', ?, 60000, 20000, "
            "10000, 3, 1, ?, 0, 1, ?, ?)",
            ((i, f"service-{i:05d}.example", json.dumps({"url": f"https://s{i}.example/"}),
              json.dumps(["web"] if i % 3 else ["db"]), stamp, stamp)
             for i in range(1, monitors + 1)))
        db.executemany(
            "INSERT INTO monitor_state (monitor_id, state, since, failures, successes, "
            "history, history_len, flapping, last_checked_at, last_latency_ms) "
            "VALUES (?, ?, ?, 0, 0, 0, 0, 0, ?, ?)",
            ((i, STATES[i % len(STATES)], stamp, stamp, 80.0 + i % 50)
             for i in range(1, monitors + 1)))
        for table, buckets in (("rollups_daily", range(today - 89 * DAY, today, DAY)),
                               ("rollups_hourly", range(hour - 24 * HOUR, hour, HOUR))):
            db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", (
                template | {"monitor_id": i, "bucket": b,
                            "up": template["checks"] - (1 if (i + b // DAY) % 29 == 0 else 0)}
                for i in range(1, monitors + 1) for b in buckets))
        db.execute("INSERT INTO meta (key, value) VALUES ('rolled_up_until', ?) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(hour),))
        # The address sealed and digested, as the app stores it (store.accounts).
        wrapped = db.execute("SELECT wrapped FROM instance_keys WHERE name = ?",
                             (keys.LOOKUP,)).fetchone()[0]
        lookup = keys.current().decrypt(wrapped.encode())
        db.execute("INSERT INTO users (id, email, email_digest, name, password_hash, "
                   "failed_logins, created_at) VALUES (1, ?, ?, 'Ala', ?, 0, ?)",
                   (keys.seal("ala@example.com"),
                    keys.digest_with(lookup, "email", "ala@example.com"),
                    hash_password("a long passphrase"), stamp))
        db.execute("INSERT INTO memberships (user_id, org_id, role, created_at) "
                   "VALUES (1, 1, 'owner', ?)", (stamp,))
        db.execute("INSERT INTO sessions (token_hash, user_id, org_id, created_at, expires_at) "
                   "VALUES (?, 1, 1, ?, ?)",
                   (digest(SESSION), stamp, (now + timedelta(days=1)).isoformat(sep=" ")))


async def timed(client: httpx.AsyncClient, url: str, repeats: int) -> dict[str, float]:
    times, size, compressed = [], 0, 0
    for _ in range(repeats):
        start = time.perf_counter()
        answer = await client.get(url)
        times.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.text[:300]
        size = len(answer.content)
        compressed = len(gzip.compress(answer.content))
    times.sort()
    return {"p50_ms": 1000 * statistics.median(times),
            "p95_ms": 1000 * times[int(len(times) * 0.95) - 1], "bytes": size,
            "gzip_bytes": compressed}


async def measure(data_dir: Path, repeats: int) -> list[dict[str, Any]]:
    settings = Settings.model_validate({"data_dir": data_dir})
    app = create_app(settings)  # lifespan not run: no engine, the page reads the database
    transport = httpx.ASGITransport(app=app)
    rows = []
    async with httpx.AsyncClient(transport=transport, base_url="http://dozor.test",
                                 cookies={"dozor_session": SESSION},
                                 headers={"Authorization": f"Bearer {SESSION}"}) as client:
        for name, url in (("API: first 50 monitors (JSON, baseline)", "/api/v1/monitors?limit=50"),
                          ("overview: first screen", "/"),
                          ("overview: state filter (down)", "/?state=down"),
                          ("overview: search 'service-09'", "/?q=service-09"),
                          ("overview: sorted by latency, page 100", "/?sort=latency&page=100")):
            await client.get(url)  # warm: templates compiled, caches filled
            rows.append({"run": name, **await timed(client, url, repeats)})
    await app.state.database.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1,000 monitors, 5 repeats")
    options = parser.parse_args()
    monitors, repeats = (1_000, 5) if options.quick else (10_000, 30)
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        keys.use(Settings.model_validate({"data_dir": data_dir}))  # migrations seal with it
        upgrade(f"sqlite:///{data_dir / 'dozor.db'}")
        started = time.perf_counter()
        fill(data_dir / "dozor.db", monitors)
        print(f"{monitors:,} monitors with 90 days of rollups written in "
              f"{time.perf_counter() - started:.0f} s")
        rows = uvloop.run(measure(data_dir, repeats))
    baseline = rows[0]["p50_ms"]
    lines = ["| request | server time p50 | p95 | vs API page | bytes (gzip) |", "|---" * 5 + "|"]
    for row in rows:
        lines.append(f"| {row['run']} | {row['p50_ms']:.1f} ms | {row['p95_ms']:.1f} ms "
                     f"| {row['p50_ms'] / baseline:.1f}x | {row['bytes'] / 1024:.1f} KB "
                     f"({row['gzip_bytes'] / 1024:.1f} KB) |")
    OUT.mkdir(exist_ok=True)
    (OUT / "dashboard.json").write_text(json.dumps(rows, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
