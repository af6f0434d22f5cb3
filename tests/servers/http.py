"""Local HTTP and HTTPS servers for tests, on loopback and an ephemeral port.

:class:`LocalHttpServer` has httpbin-like routes and canned responses a test can add::

    async with LocalHttpServer() as server:
        server.serve("/health", status=503, json={"status": "DOWN"})
        url = server.url("/health")          # http://127.0.0.1:PORT/health
        ...
        assert server.requests[-1].headers["User-Agent"] == "dozor-test"

Built-in routes: ``/status/{code}``, ``/delay/{seconds}``, ``/redirect/{n}`` (a chain of
n redirects ending in 200), ``/headers`` (request headers as JSON),
``/basic-auth`` and ``/bearer`` (200 for ``server.users`` / ``server.tokens``, else 401),
``/bytes/{n}``, ``/stream/{n}``
(chunked, no length), ``/slow-body/{seconds}`` (headers now, body later), ``/echo``.

For HTTPS pass ``ssl_context=server_ssl_context(cert)`` with a trustme certificate.
:class:`SlowHandshakeServer` delays its TLS handshake, to prove phase timing;
:class:`RawServer` answers any connection with fixed bytes, for broken servers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from dataclasses import dataclass, field
from typing import Any

import trustme
from aiohttp import web

from tests.servers.aiohttp_base import LocalAiohttpServer


@dataclass(slots=True)
class Canned:
    """A response a test set up with :meth:`LocalHttpServer.serve`."""

    status: int = 200
    body: str | bytes = ""
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(slots=True)
class Recorded:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def server_ssl_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


class LocalHttpServer(LocalAiohttpServer):
    def __init__(self, *, ssl_context: ssl.SSLContext | None = None,
                 host: str = "127.0.0.1") -> None:
        super().__init__()
        self.host = host
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context else "http"
        self.requests: list[Recorded] = []
        # Accepted by /basic-auth and /bearer; kept here so secrets stay out of URLs.
        self.users: dict[str, str] = {}
        self.tokens: set[str] = set()
        self._canned: dict[str, Canned] = {}

    def serve(self, path: str, **response: Any) -> str:
        """Answer ``path`` with a canned response (see :class:`Canned`); returns its URL."""
        self._canned[path] = Canned(**response)
        return self.url(path)

    def url(self, path: str = "/", host: str | None = None) -> str:
        host = host or self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}{path}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._dispatch)

    def middlewares(self) -> list[Any]:
        return [self._record]

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Recorded(request.method, request.path_qs, dict(request.headers),
                                      body))
        response: web.StreamResponse = await handler(request)
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        canned = self._canned.get(request.path)
        if canned is not None:
            return await _answer(canned)
        name, _, argument = request.path.strip("/").partition("/")
        if name == "basic-auth":
            return self._basic_auth(request)
        if name == "bearer":
            return self._bearer(request)
        route = _ROUTES.get(name)
        if route is None:
            return web.Response(status=404, text="no such route")
        return await route(request, argument)

    def _basic_auth(self, request: web.Request) -> web.Response:
        accepted = {"Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                    for user, password in self.users.items()}
        if request.headers.get("Authorization") not in accepted:
            return web.Response(status=401, text="who are you?")
        return web.json_response({"authenticated": True})

    def _bearer(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") not in {f"Bearer {t}" for t in self.tokens}:
            return web.Response(status=401, text="who are you?")
        return web.json_response({"authenticated": True})


async def _answer(canned: Canned) -> web.Response:
    if canned.delay:
        await asyncio.sleep(canned.delay)
    if canned.json is not None:
        return web.json_response(canned.json, status=canned.status, headers=canned.headers)
    body = canned.body.encode() if isinstance(canned.body, str) else canned.body
    return web.Response(status=canned.status, body=body, headers=canned.headers)


async def _status(_: web.Request, argument: str) -> web.Response:
    return web.Response(status=int(argument), text=f"status {argument}")


async def _delay(_: web.Request, argument: str) -> web.Response:
    await asyncio.sleep(float(argument))
    return web.Response(text="slept")


async def _redirect(_: web.Request, argument: str) -> web.Response:
    remaining = int(argument)
    if remaining <= 0:
        return web.Response(text="arrived")
    raise web.HTTPFound(f"/redirect/{remaining - 1}")


async def _headers(request: web.Request, _: str) -> web.Response:
    return web.json_response(dict(request.headers))


async def _bytes(_: web.Request, argument: str) -> web.Response:
    return web.Response(body=b"a" * int(argument))


async def _slow_body(request: web.Request, argument: str) -> web.StreamResponse:
    """Headers at once, the body only after ``argument`` seconds."""
    response = web.StreamResponse()
    response.content_length = 4
    await response.prepare(request)
    await asyncio.sleep(float(argument))
    await response.write(b"late")
    return response


async def _stream(request: web.Request, argument: str) -> web.StreamResponse:
    """``argument`` bytes, chunked and without a Content-Length."""
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    remaining = int(argument)
    while remaining > 0:
        size = min(remaining, 16384)
        await response.write(b"a" * size)
        remaining -= size
    await response.write_eof()
    return response


async def _echo(request: web.Request, _: str) -> web.Response:
    body = await request.text()
    return web.json_response({"method": request.method, "body": body})


_ROUTES = {
    "status": _status, "delay": _delay, "redirect": _redirect, "headers": _headers,
    "bytes": _bytes, "echo": _echo,
    "slow-body": _slow_body, "stream": _stream,
}


class SlowHandshakeServer:
    """Accepts TCP at once, waits ``delay`` seconds, then does TLS and answers 200 ``ok``.

    The gap between TCP connect and the end of the handshake is known, so a test can
    check that a client's ``connect`` and ``tls`` phases fall on the right sides of it.
    """

    def __init__(self, ssl_context: ssl.SSLContext, delay: float) -> None:
        self._ssl_context = ssl_context
        self._delay = delay
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> SlowHandshakeServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Accept(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"

    def _accepted(self, transport: asyncio.Transport) -> None:
        task = asyncio.get_running_loop().create_task(self._upgrade(transport))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        await asyncio.sleep(self._delay)
        answer = _AnswerOk()
        try:
            tls = await asyncio.get_running_loop().start_tls(
                transport, answer, self._ssl_context, server_side=True)
        except (OSError, ssl.SSLError):
            transport.close()
            return
        if tls is not None:
            answer.attach(tls)  # start_tls does not call connection_made


class _Accept(asyncio.Protocol):
    def __init__(self, server: SlowHandshakeServer) -> None:
        self._server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        # Leave the ClientHello unread in the socket until the handshake starts.
        transport.pause_reading()
        self._server._accepted(transport)


class _AnswerOk(asyncio.Protocol):
    def __init__(self) -> None:
        self._received = b""
        self._transport: asyncio.Transport | None = None

    def attach(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.data_received(b"")

    def data_received(self, data: bytes) -> None:
        self._received += data
        if b"\r\n\r\n" in self._received and self._transport is not None:
            self._transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            self._transport.close()


class RawServer:
    """Answers every connection with ``reply`` (maybe nothing) and hangs up."""

    def __init__(self, reply: bytes) -> None:
        self._reply = reply
        self._server: asyncio.Server | None = None
        self.port = 0
        self.received: list[bytes] = []  # each request's head, as it came

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.received.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self._reply)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
