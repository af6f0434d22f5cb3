"""`make bench` (third part): heartbeat pings of the real server against a bare uvicorn app,
in the same run.

Each server runs under uvicorn on one core; the load (bench/ping_load.py, a bounded number
of requests over fresh connections) runs on the other, so the server's CPU seconds are the
pings' alone. A warm-up pings every monitor once (each becomes up) before the measured
requests. Reported: pings per second, server CPU per ping, pings per CPU second as a share
of the bare app's, and latency seen by the load. Results go to bench/out/ping.json.

    python -m bench.ping [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import psutil

from bench.engine import OUT, free_port, pinned

CONCURRENCY = 50  # cron jobs pinging at once


@dataclass(frozen=True)
class Scenario:
    name: str
    shape: str  # bench.ping_server's: bare, fastapi, dozor
    monitors: int  # heartbeat monitors in the database (dozor only)
    tokens: int  # how many distinct push URLs the load cycles through


def scenarios(quick: bool) -> list[Scenario]:
    many = 1_000 if quick else 10_000
    return [Scenario("bare uvicorn ASGI app", "bare", 0, many),
            Scenario("FastAPI, one trivial route", "fastapi", 0, many),
            Scenario(f"Dozor, {many:,} monitors, pings spread over all", "dozor", many, many),
            Scenario(f"Dozor, {many:,} monitors, every ping to one", "dozor", many, 1)]


def start_server(scenario: Scenario, port: int, data_dir: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "bench.ping_server", scenario.shape, str(port)]
    if scenario.shape == "dozor":
        command += [data_dir, str(scenario.monitors)]
    return subprocess.Popen(command, preexec_fn=pinned(0))


def wait_ready(server: subprocess.Popen[bytes], port: int, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server stopped with status {server.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
            return
        except urllib.error.HTTPError:  # answered (a 404 from the bare apps): ready
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start in time")


def load(port: int, count: int, tokens: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "bench.ping_load", str(port), str(count),
                           str(CONCURRENCY), str(tokens)], check=True, capture_output=True,
                          text=True, preexec_fn=pinned(1), timeout=900)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def server_cpu(server: subprocess.Popen[bytes]) -> float:
    times = psutil.Process(server.pid).cpu_times()
    return float(times.user + times.system)


def measure(scenario: Scenario, count: int) -> dict[str, float]:
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_server(scenario, port, data_dir)
        try:
            wait_ready(server, port)
            load(port, max(scenario.tokens, 500), scenario.tokens)  # warm-up: each one up
            time.sleep(2.0)  # the checks the first pings triggered are written
            cpu = server_cpu(server)
            result = load(port, count, scenario.tokens)
            result["cpu_s"] = server_cpu(server) - cpu
        finally:
            server.terminate()
            server.wait(30)
    return result


def row(scenario: Scenario, result: dict[str, float], baseline_per_cpu: float
        ) -> dict[str, Any]:
    per_cpu = result["requests"] / result["cpu_s"]
    return {"run": scenario.name, "per_second": result["requests"] / result["wall_s"],
            "cpu_ms_per_ping": 1000 * result["cpu_s"] / result["requests"],
            "vs_bare": per_cpu / baseline_per_cpu, **result}


def report(rows: list[dict[str, Any]]) -> str:
    lines = ["| run | pings/s | server CPU ms per ping | per CPU s vs bare | p50 | p99 "
             "| failed |", "|---" * 7 + "|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['per_second']:,.0f} | {r['cpu_ms_per_ping']:.3f} "
                     f"| {r['vs_bare']:.0%} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms "
                     f"| {r['failed']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer requests and monitors")
    options = parser.parse_args()
    count = 3_000 if options.quick else 30_000
    rows: list[dict[str, Any]] = []
    baseline = 0.0
    for scenario in scenarios(options.quick):
        result = measure(scenario, count)
        if not rows:
            baseline = result["requests"] / result["cpu_s"]
        rows.append(row(scenario, result, baseline))
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    OUT.mkdir(exist_ok=True)
    (OUT / "ping.json").write_text(json.dumps({"http": http, "rows": rows}, indent=2))
    print(f"uvicorn's HTTP parser: {http}; {count:,} requests per run, "
          f"{CONCURRENCY} at a time, a fresh connection each")
    print(report(rows))


if __name__ == "__main__":
    main()
