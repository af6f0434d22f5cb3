"""The notification benchmark's provider: an HTTP endpoint that accepts every webhook
with 200 and keeps connections alive, as a provider's API does.

    python -m bench.provider PORT
"""

from __future__ import annotations

import sys

import uvloop
from aiohttp import web


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="ok")


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_post("/hook/{n}", accept)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    print("ready", flush=True)
    import asyncio

    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
