"""Load for the ping benchmark: COUNT requests ``GET /ping/<token>``, CONCURRENCY at a time,
each over a fresh connection (as ``curl`` in a cron job opens one per ping), the tokens
cycling through TOKENS push tokens. Raw asyncio streams and uvloop, so the load side is
as cheap as it can be. Prints one JSON line: answered (200), failed, wall seconds,
latency p50/p99 in ms, and this process's CPU seconds.

    python -m bench.ping_load PORT COUNT CONCURRENCY TOKENS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import uvloop

TIMEOUT = 30.0  # seconds for one request, connection included


def token(i: int) -> str:
    """The push token of the i-th benchmark monitor (bench.ping_server makes them)."""
    return f"bench-{i:06d}"


def request(i: int) -> bytes:
    return (f"GET /ping/{token(i)} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n"
            "Connection: close\r\n\r\n").encode()


async def one(port: int, payload: bytes) -> bool:
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(payload)
            answer = await reader.read()  # to the end: the server closes after answering
        finally:
            writer.close()
    return answer.startswith(b"HTTP/1.1 200")


async def measure(port: int, count: int, concurrency: int, tokens: int) -> dict[str, float]:
    payloads = [request(i) for i in range(min(count, tokens))]
    issued = answered = failed = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal issued, answered, failed
        while issued < count:  # a bounded number of requests, whatever the clock says
            payload = payloads[issued % len(payloads)]
            issued += 1
            started = time.perf_counter()
            try:
                ok = await one(port, payload)
            except (OSError, TimeoutError):
                ok = False
            latencies.append(time.perf_counter() - started)
            answered += ok
            failed += not ok

    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    latencies.sort()
    return {"requests": answered, "failed": failed, "wall_s": wall, "load_cpu_s": cpu,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)]}


if __name__ == "__main__":
    port, count, concurrency, tokens = map(int, sys.argv[1:5])
    print(json.dumps(uvloop.run(measure(port, count, concurrency, tokens))))
