"""Servers and clients for check tests: plain HTTP, HTTPS with a local CA, bad certificates.

Every server listens on loopback only. The CA and certificates are made once per session;
servers start fresh for each test (a few milliseconds).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import trustme

from dozor.outbound import Outbound
from tests.servers.http import LocalHttpServer, server_ssl_context

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_pem(tls_ca: trustme.CA) -> str:
    """The local CA as inline PEM, as a config's ``ca`` takes it."""
    return tls_ca.cert_pem.bytes().decode()


@pytest.fixture(scope="session")
def server_cert(tls_ca: trustme.CA) -> trustme.LeafCert:
    return tls_ca.issue_cert(*LOOPBACK_NAMES)


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    client = Outbound(user_agent="dozor-test")
    yield client
    await client.close()


@pytest.fixture
async def http_server() -> AsyncIterator[LocalHttpServer]:
    async with LocalHttpServer() as server:
        yield server


@pytest.fixture
async def https_server(server_cert: trustme.LeafCert) -> AsyncIterator[LocalHttpServer]:
    async with LocalHttpServer(ssl_context=server_ssl_context(server_cert)) as server:
        yield server


@pytest.fixture(scope="session")
def server_certs(tls_ca: trustme.CA, server_cert: trustme.LeafCert) -> dict[str, trustme.LeafCert]:
    """Certificates for loopback by the local CA: ``good``, ``expired`` and ``wrong-host``."""
    now = datetime.now(UTC)
    expired = tls_ca.issue_cert(*LOOPBACK_NAMES, not_before=now - timedelta(days=90),
                                not_after=now - timedelta(days=1))
    return {"good": server_cert, "expired": expired,
            "wrong-host": tls_ca.issue_cert("somewhere-else.test")}


def ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
async def ipv6_server() -> AsyncIterator[LocalHttpServer]:
    if not ipv6_loopback_works():
        pytest.skip("this machine cannot listen on ::1")
    async with LocalHttpServer(host="::1") as server:
        yield server
