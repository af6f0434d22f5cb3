"""Fixtures for the network checks: loopback stream, TLS and DNS servers.

Test modules import the fixtures they use by name (pytest_plugins only works in the
root conftest)::

    from tests.servers.net_fixtures import *  # noqa: F403  (the fixtures)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from tests.servers.certs import CertificateSet, make_certificates
from tests.servers.dns import DnsServer
from tests.servers.streams import StreamServer, serve_stream, unused_port

__all__ = ["certificates", "closed_port", "dns_server", "fake_names", "serve"]

Serve = Callable[..., Awaitable[StreamServer]]


@pytest.fixture(scope="session")
def certificates() -> CertificateSet:
    """One CA and its certificates for every TLS test (key generation is the slow part)."""
    return make_certificates()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start stream servers with ``await serve(banner=..., echo=..., tls=...)``; all stop
    when the test ends."""
    async with AsyncExitStack() as stack:

        async def start(**options: Any) -> StreamServer:
            return await stack.enter_async_context(serve_stream(**options))

        yield start


@pytest.fixture
def closed_port() -> int:
    return unused_port()


@pytest.fixture
async def dns_server() -> AsyncIterator[DnsServer]:
    """A running DNS server with no records; tests set ``dns_server.records``."""
    async with DnsServer() as server:
        yield server


@pytest.fixture
async def fake_names(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Resolve host names from this dict (tests add entries) and fail all others with a
    DNS error, so no test asks the real resolver; IP literals and ``localhost`` pass."""
    names: dict[str, list[str]] = {}
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "localhost" or _is_ip(host):
            return await real(host, port, *args, **kwargs)
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [info for ip in names[host] for info in await real(ip, port, *args, **kwargs)]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return names


def _is_ip(host: Any) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
