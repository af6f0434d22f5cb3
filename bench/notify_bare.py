"""The notification benchmark's baseline: the same webhook POSTs from a bare aiohttp loop
(one keep-alive session, 200 in flight, no database, no signing), in this process.

    python -m bench.notify_bare PROVIDER_URL REQUESTS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp
import uvloop

BODY = json.dumps({"event": "down", "subject": "DOWN: site-1", "text": "connection refused",
                   "link": None, "language": "en", "message_id": 1,
                   "idempotency_key": "m1", "sent_at": "2026-11-21T12:00:00Z"}).encode()


async def main(url: str, requests: int) -> None:
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(range(requests))
        wall, cpu = time.perf_counter(), time.process_time()

        async def worker() -> None:
            for i in queue:
                async with session.post(f"{url}/hook/{i}", data=BODY,
                                        headers={"Content-Type": "application/json"}) as r:
                    await r.read()
        await asyncio.gather(*(worker() for _ in range(200)))
        print(json.dumps({"requests": requests, "wall_s": time.perf_counter() - wall,
                          "cpu_s": time.process_time() - cpu}))


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], int(sys.argv[2])))
