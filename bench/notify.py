"""`make bench` (second part): alert delivery against a bare aiohttp loop, in the same run.

The provider runs on one core, the measured process on the other. Messages go through the
whole path: outbox (SQLite), claim, guard, webhook channel (signed JSON), the provider,
and the outcome recorded. Results go to bench/out/notify.json.

    python -m bench.notify [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from typing import Any

from bench.engine import OUT, free_port, pinned, run_json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    options = parser.parse_args()
    count, rate, seconds = (2_000, 1_000, 3) if options.quick else (10_000, 1_000, 10)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    provider = subprocess.Popen([sys.executable, "-m", "bench.provider", str(port)],
                                stdout=subprocess.PIPE, text=True, preexec_fn=pinned(1))
    assert provider.stdout is not None and provider.stdout.readline().strip() == "ready"
    try:
        bare = run_json("bench.notify_bare", url, count)
        with tempfile.TemporaryDirectory() as data_dir:
            run = run_json("bench.notify_run", url, data_dir, count, rate, seconds)
    finally:
        provider.terminate()
        provider.wait(10)
    result: dict[str, Any] = {"bare": bare, "dozor": run}
    OUT.mkdir(exist_ok=True)
    (OUT / "notify.json").write_text(json.dumps(result, indent=2))
    print(report(bare, run))


def report(bare: dict[str, float], run: dict[str, float]) -> str:
    bare_rate = bare["requests"] / bare["wall_s"]
    burst_rate = run["burst_messages"] / run["burst_wall_s"]
    return "\n".join([
        "| run | messages/s | CPU ms per message | vs bare (per CPU s) | p50 | p99 | max |",
        "|---|---|---|---|---|---|---|",
        f"| bare aiohttp POST loop | {bare_rate:,.0f} "
        f"| {1000 * bare['cpu_s'] / bare['requests']:.3f} | 100% | - | - | - |",
        f"| Dozor, burst of {run['burst_messages']:,.0f} queued at once | {burst_rate:,.0f} "
        f"| {1000 * run['burst_cpu_s'] / run['burst_messages']:.3f} "
        f"| {(run['burst_messages'] / run['burst_cpu_s']) / (bare['requests'] / bare['cpu_s']):.0%}"
        " | - | - | - |",
        f"| Dozor, paced {run['paced_messages'] / run['paced_wall_s']:,.0f}/s, "
        f"enqueue to accepted | {run['paced_messages'] / run['paced_wall_s']:,.0f} "
        f"| {1000 * run['paced_cpu_s'] / run['paced_messages']:.3f} | - "
        f"| {run['latency_p50_ms']:.0f} ms | {run['latency_p99_ms']:.0f} ms "
        f"| {run['latency_max_ms']:.0f} ms |",
        f"\nnot delivered: {run['not_delivered']:.0f}",
    ])


if __name__ == "__main__":
    main()
