"""Shared pieces of the local SMS provider fakes (SMSAPI, Twilio, Kannel).

A fake is an aiohttp app on loopback that records every request and answers as its
provider does. A test can put canned answers in front (:meth:`FakeProvider.queue`) for
the next requests, e.g. a 503 or an answer that never comes, and make the fake call back
(:meth:`FakeProvider.call`), as the provider does with delivery reports and inbound texts.

:class:`CallbackReceiver` plays Dozor's side of a callback: it turns an HTTP request into
a :class:`CallbackRequest`, hands it to a channel's ``handle_callback`` and answers with
the :class:`CallbackReply`, so a test can walk send -> callback -> events.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from dozor.notify.channels.base import CallbackReply, CallbackRequest, ChannelEvent
from tests.servers.aiohttp_base import LocalAiohttpServer


@dataclass(slots=True)
class Seen:
    """A request a fake received."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]


@dataclass(slots=True)
class Answer:
    """A canned answer; ``delay`` longer than the client's timeout is one that never comes."""

    status: int = 200
    body: str = ""
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def response(self) -> web.Response:
        return web.Response(status=self.status, text=self.body,
                            content_type=self.content_type, headers=self.headers)


class LoopbackServer(LocalAiohttpServer):
    """An aiohttp application on 127.0.0.1 and an ephemeral port."""

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeProvider(LoopbackServer):
    """Base of the provider fakes: records requests, serves queued answers first."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Seen] = []
        self._queued: deque[Answer] = deque()

    def queue(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order, instead of the normal answer."""
        self._queued.extend(answers)

    def middlewares(self) -> list[Any]:
        return [self._record]

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        form = {}
        if request.content_type == "application/x-www-form-urlencoded":
            form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        self.requests.append(Seen(request.method, request.path, dict(request.query), form,
                                  dict(request.headers)))
        if self._queued:
            answer = self._queued.popleft()
            await asyncio.sleep(answer.delay)
            return answer.response()
        return await handler(request)

    async def call(self, method: str, url: str, *, form: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, str]:
        """Call back a client's URL, as the provider does; returns the status and body."""
        async with aiohttp.ClientSession() as session, session.request(
                method, url, data=form, headers=headers) as response:
            return response.status, await response.text()


class CallbackReceiver(LoopbackServer):
    """Dozor's callback endpoint in miniature: every request goes to ``handle``."""

    def __init__(self, handle: Callable[[CallbackRequest], Awaitable[CallbackReply]]) -> None:
        super().__init__()
        self._handle = handle
        self.events: list[ChannelEvent] = []
        self.requests: list[CallbackRequest] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        form: dict[str, str] = {}
        if request.content_type == "application/x-www-form-urlencoded":
            form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        callback = CallbackRequest(
            method=request.method, url=str(request.url), query=dict(request.query),
            form=form, body=body, headers={k.lower(): v for k, v in request.headers.items()})
        self.requests.append(callback)
        reply = await self._handle(callback)
        self.events.extend(reply.events)
        return web.Response(status=reply.status, text=reply.body,
                            content_type=reply.content_type)


def unused_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def single(items: Sequence[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]
