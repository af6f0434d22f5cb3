"""Plain and TLS stream servers on loopback for the tcp and tls checks.

>>> async def example() -> None:
...     async with serve_stream(banner=b"220 ready\\r\\n") as server:
...         print(server.port)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class StreamServer:
    host: str
    port: int
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class Behaviour:
    """What the server does with each connection."""

    banner: bytes = b""  # written as soon as a client connects
    echo: bool = False  # send back whatever arrives
    hang_up: bool = False  # close right after the banner


async def _converse(
    server: StreamServer, behaviour: Behaviour,
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
) -> None:
    server.connections += 1
    try:
        if behaviour.banner:
            writer.write(behaviour.banner)
            await writer.drain()
        while not behaviour.hang_up and (chunk := await reader.read(4096)):
            server.received += chunk
            if behaviour.echo:
                writer.write(chunk)
                await writer.drain()
    except OSError:
        pass  # the client went away first: that is its right
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def serve_stream(
    banner: bytes = b"", echo: bool = False, hang_up: bool = False,
    tls: ssl.SSLContext | None = None, host: str = "127.0.0.1",
) -> AsyncIterator[StreamServer]:
    """A TCP (or TLS, given a server context) server on an ephemeral loopback port."""
    behaviour = Behaviour(banner, echo, hang_up)
    tasks: set[asyncio.Task[None]] = set()
    state = StreamServer(host, 0)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await _converse(state, behaviour, reader, writer)
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(on_connect, host, 0, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def unused_port(host: str = "127.0.0.1") -> int:
    """A loopback port nobody listens on, so connecting there is refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port
