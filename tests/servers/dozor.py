"""The real Dozor application under uvicorn, on loopback and a free port, lifespan on
(so the engine and the alert service run as in ``dozor serve``)::

    async with serving(settings) as (base_url, app):
        ...  # talk HTTP to base_url; app.state.engine is the running engine
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from dozor.app import create_app
from dozor.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(settings: Settings, port: int | None = None
                  ) -> AsyncIterator[tuple[str, FastAPI]]:
    port = port or free_port()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="on", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():  # failed to start: show why
                    await task
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await task
