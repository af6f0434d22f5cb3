"""The base of the fake chat-provider APIs (Viber, Meta Graph): a local aiohttp server on
loopback and an ephemeral port that records every request and speaks the provider's
protocol, unless a test scripted the next answers::

    async with FakeViber(token="t0ken") as viber:
        viber.answer_next(status=500)            # the next request gets HTTP 500
        viber.answer_next(json={"status": 12})   # and the one after that this body
        viber.answer_next(delay=5)               # or no answer for 5 seconds
        ...
        assert viber.requests[-1].json["receiver"] == "01234567890A="

Subclasses add the provider's routes in :meth:`routes`. :func:`signed_request` builds
the :class:`CallbackRequest` a provider would make to our webhook.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from dozor.notify.channels.base import CallbackRequest


@dataclass(slots=True)
class Received:
    """A request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class Scripted:
    """An answer a test set up with :meth:`ProviderServer.answer_next`."""

    status: int = 200
    json: Any = None
    body: str | bytes = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class ProviderServer:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: deque[Scripted] = deque()
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)
        self.port = 0

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def answer_next(self, **answer: Any) -> None:
        """Answer the next request not by the protocol but as told (see :class:`Scripted`)."""
        self._script.append(Scripted(**answer))

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def next_id(self) -> int:
        return next(self._ids)

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._record])
        app.add_routes(self.routes())
        # Cancel a handler whose client went away, so a delayed answer can't hold shutdown.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Received(request.method, request.path, dict(request.query),
                                      dict(request.headers), body))
        if self._script:
            return await _scripted(self._script.popleft())
        response: web.StreamResponse = await handler(request)
        return response


async def _scripted(answer: Scripted) -> web.Response:
    if answer.delay:
        await asyncio.sleep(answer.delay)
    if answer.json is not None:
        return web.json_response(answer.json, status=answer.status, headers=answer.headers)
    body = answer.body.encode() if isinstance(answer.body, str) else answer.body
    return web.Response(status=answer.status, body=body, headers=answer.headers)


def signed_request(body: Any, headers: dict[str, str], method: str = "POST",
                   url: str = "https://dozor.example/notify/callback/1") -> CallbackRequest:
    """A webhook call as our HTTP layer hands it to a channel (header names lower-case);
    ``body`` is JSON-encoded unless it is bytes already."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return CallbackRequest(method=method, url=url, query={}, form={}, body=raw,
                           headers={name.lower(): value for name, value in headers.items()})
