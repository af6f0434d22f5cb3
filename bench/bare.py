"""The baseline: a bare aiohttp request loop, as cheap as an HTTP check can be.

Fresh connection per request, no DNS cache, the same concurrency as the engine, uvloop.
Prints one JSON line: requests, CPU seconds, wall seconds.

    python -m bench.bare URL SECONDS CONCURRENCY
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp
import uvloop

MAX_REQUESTS = 2_000_000  # a bound on the loop, whatever the clock says


async def measure(url: str, seconds: float, concurrency: int) -> dict[str, float]:
    connector = aiohttp.TCPConnector(force_close=True, limit=0, use_dns_cache=False)
    count = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + seconds
        cpu_start, wall_start = time.process_time(), time.monotonic()

        async def worker() -> None:
            nonlocal count
            while time.monotonic() < deadline and count < MAX_REQUESTS:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r:
                    await r.read()
                    count += r.status == 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu_start, time.monotonic() - wall_start
    return {"requests": count, "cpu_s": cpu, "wall_s": wall}


if __name__ == "__main__":
    url, seconds, concurrency = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(uvloop.run(measure(url, seconds, concurrency))))
