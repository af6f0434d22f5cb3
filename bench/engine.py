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
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out"
CONCURRENCY = 20  # the engine's default per-host limit: all monitors share one target host
# (monitors, interval in seconds): a light load, the 10,000-monitor case, and a heavy load.
SCENARIOS = [(1_000, 1.0), (10_000, 10.0), (10_000, 4.0)]
QUICK = [(1_000, 1.0)]


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


def row(name: str, result: dict[str, float], baseline_per_cpu: float) -> dict[str, Any]:
    per_cpu = result.get("checks", result.get("requests", 0)) / result["cpu_s"]
    count = result.get("checks", result.get("requests", 0))
    return {"run": name, "per_second": count / result["wall_s"],
            "cpu_s_per_1000": 1000 * result["cpu_s"] / count,
            "vs_bare": per_cpu / baseline_per_cpu, **result}


def report(rows: list[dict[str, Any]]) -> str:
    lines = ["| run | checks/s | CPU s per 1,000 | per CPU s vs bare | lag p50 | lag p99 "
             "| memory per monitor | DB bytes per result |", "|---" * 8 + "|"]
    for r in rows:
        lag = (f"{r['lag_p50_ms']:.1f} ms", f"{r['lag_p99_ms']:.1f} ms") if "lag_p50_ms" in r \
            else ("-", "-")
        memory = f"{r['rss_per_monitor_bytes'] / 1024:.2f} KB" \
            if "rss_per_monitor_bytes" in r else "-"
        db = f"{r['db_bytes_per_result']:.1f}" if "db_bytes_per_result" in r else "-"
        lines.append(f"| {r['run']} | {r['per_second']:,.0f} | {r['cpu_s_per_1000']:.3f} "
                     f"| {r['vs_bare']:.0%} | {lag[0]} | {lag[1]} | {memory} | {db} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one small scenario")
    parser.add_argument("--seconds", type=float, default=30.0)
    options = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    target = start_target(port)
    try:
        bare = run_json("bench.bare", url + "/bare", min(options.seconds, 15), CONCURRENCY)
        baseline = bare["requests"] / bare["cpu_s"]
        rows = [row("bare aiohttp loop", bare, baseline)]
        for monitors, interval in (QUICK if options.quick else SCENARIOS):
            with tempfile.TemporaryDirectory() as data_dir:
                result = run_json("bench.engine_run", url, monitors, interval,
                                  options.seconds, data_dir)
            rows.append(row(f"engine, {monitors:,} monitors every {interval:g} s", result,
                            baseline))
    finally:
        target.terminate()
        target.wait(10)
    OUT.mkdir(exist_ok=True)
    (OUT / "engine.json").write_text(json.dumps(rows, indent=2))
    print(report(rows))


if __name__ == "__main__":
    main()
