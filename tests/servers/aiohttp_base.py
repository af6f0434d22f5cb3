"""What the aiohttp fakes share: start on loopback, stop, ``async with``.

A subclass adds its routes (``routes``) and may set ``ssl_context``, ``host``,
``middlewares`` or ``shutdown_timeout``. The first start takes a free port; a start after
``close()`` takes the same one again, so a test can model a restart.
"""

from __future__ import annotations

import ssl
from typing import Any, Self

from aiohttp import web


class LocalAiohttpServer:
    host = "127.0.0.1"
    shutdown_timeout = 0.1  # seconds closing waits for handlers still running

    def __init__(self) -> None:
        self.port = 0
        self.ssl_context: ssl.SSLContext | None = None
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def middlewares(self) -> list[Any]:
        return []

    async def start(self) -> None:
        app = web.Application(middlewares=self.middlewares())
        self.routes(app)
        # Cancel a handler whose client gave up, so a never-answering reply can't hold close().
        self._runner = web.AppRunner(app, handler_cancellation=True,
                                     shutdown_timeout=self.shutdown_timeout)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context,
                           reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
