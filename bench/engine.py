"""`make bench`: the monitoring engine against a bare aiohttp loop, in the same run.

The target runs on one core, the measured process on the other, so CPU figures are the
measured side's alone. Reported as ratios against the baseline measured here and now,
and as absolute figures for this machine. Results go to bench/out/engine.json.

    python -m bench.engine [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out"
CONCURRENCY = 20  # the engine's default per-host limit: all monitors share one target host


@dataclass(frozen=True)
class Scenario:
    name: str
    monitors: int
    interval: float  # seconds
    seconds: float  # measured after one interval of warm-up


# 10,000 monitors at the default interval: lag, memory and storage as people will see them.
# The same monitors every 2 s offer 5,000 checks/s, more than one core can do: that shows
# the engine's throughput and cost per check at saturation, as the bare loop is measured.
SCENARIOS = [Scenario("10,000 monitors every 60 s", 10_000, 60.0, 60.0),
             Scenario("10,000 monitors every 2 s (saturated)", 10_000, 2.0, 30.0)]
QUICK = [Scenario("2,000 monitors every 10 s", 2_000, 10.0, 15.0),
         Scenario("2,000 monitors every 1 s (saturated)", 2_000, 1.0, 10.0)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: int) -> Any:
    cores = sorted(os.sched_getaffinity(0))
    return lambda: os.sched_setaffinity(0, {cores[core % len(cores)]})


def run_json(module: str, *args: object) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", module, *map(str, args)], check=True,
                          capture_output=True, text=True, preexec_fn=pinned(0), timeout=900)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def start_target(port: int) -> subprocess.Popen[str]:
    target = subprocess.Popen([sys.executable, "-m", "bench.target", str(port)],
                              stdout=subprocess.PIPE, text=True, preexec_fn=pinned(1))
    assert target.stdout is not None and target.stdout.readline().strip() == "ready"
    return target


def run_engine(url: str, monitors: int, interval: float, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        return run_json("bench.engine_run", url, monitors, interval, seconds, data_dir)


def row(name: str, result: dict[str, float], baseline_per_cpu: float) -> dict[str, Any]:
    per_cpu = result.get("checks", result.get("requests", 0)) / result["cpu_s"]
    count = result.get("checks", result.get("requests", 0))
    return {"run": name, "per_second": count / result["wall_s"],
            "cpu_s_per_1000": 1000 * result["cpu_s"] / count,
            "vs_bare": per_cpu / baseline_per_cpu, **result}


def report(rows: list[dict[str, Any]]) -> str:
    lines = ["| run | checks/s | CPU s per 1,000 | per CPU s vs bare | lag p50 | lag p99 "
             "| memory per monitor | DB bytes per result (results table) | failed |",
             "|---" * 9 + "|"]
    for r in rows:
        lag = (f"{r['lag_p50_ms']:.1f} ms", f"{r['lag_p99_ms']:.1f} ms") if "lag_p50_ms" in r \
            else ("-", "-")
        memory = f"{r['rss_per_monitor_bytes'] / 1024:.2f} KB" \
            if "rss_per_monitor_bytes" in r else "-"
        db = (f"{r['db_bytes_per_result']:.1f} ({r['results_table_bytes_per_row']:.1f})"
              if "db_bytes_per_result" in r else "-")
        failed = f"{r['failed_share']:.1%}" if "failed_share" in r else "-"
        lines.append(f"| {r['run']} | {r['per_second']:,.0f} | {r['cpu_s_per_1000']:.3f} "
                     f"| {r['vs_bare']:.0%} | {lag[0]} | {lag[1]} | {memory} | {db} "
                     f"| {failed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller scenarios")
    options = parser.parse_args()
    scenarios = QUICK if options.quick else SCENARIOS
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    target = start_target(port)
    try:
        bare = run_json("bench.bare", url + "/bare", 15, CONCURRENCY)
        baseline = bare["requests"] / bare["cpu_s"]
        rows = [row("bare aiohttp loop, 20 in flight", bare, baseline)]
        for scenario in scenarios:
            result = run_engine(url, scenario.monitors, scenario.interval, scenario.seconds)
            if scenario is scenarios[0]:  # memory per monitor: the slope between two sizes
                small = run_engine(url, scenario.monitors // 10, scenario.interval / 10, 10)
                result["rss_per_monitor_bytes"] = (
                    (result["rss_bytes"] - small["rss_bytes"])
                    / (scenario.monitors - scenario.monitors // 10))
            rows.append(row(f"engine, {scenario.name}", result, baseline))
    finally:
        target.terminate()
        target.wait(10)
    OUT.mkdir(exist_ok=True)
    (OUT / "engine.json").write_text(json.dumps(rows, indent=2))
    print(report(rows))


if __name__ == "__main__":
    main()
