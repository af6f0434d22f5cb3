from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
import trustme
from aiohttp.client_reqrep import ConnectionKey

from dozor.core.types import ErrorCode
from dozor.outbound import ExchangeRecord, Outbound, describe_error, record_exchange, tls_setting
from tests.servers.http import LocalHttpServer


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    client = Outbound(user_agent="dozor-test")
    yield client
    await client.close()


def test_a_record_without_the_tcp_moment_reports_connect_with_tls_inside() -> None:
    # What a future aiohttp that skips the connector hook would give: no invented TLS time.
    record = ExchangeRecord()
    record._connection_started(10.0)
    record._dns_started(10.0)
    record._dns_ended(10.1)
    record._connection_created(10.5)
    record._headers_received(10.75)
    phases = record.phases_ms()
    assert "tls" not in phases
    assert phases == pytest.approx({"dns": 100, "connect": 400, "first_byte": 250})


def test_a_record_splits_tcp_from_tls_when_it_saw_the_socket_connect() -> None:
    record = ExchangeRecord()
    record._connection_started(10.0)
    record._tcp_connected(10.2, tls=True)
    record._connection_created(10.5)
    record._headers_received(11.0)
    assert record.phases_ms() == pytest.approx(
        {"dns": 0, "connect": 200, "tls": 300, "first_byte": 500})


def test_a_record_leaves_out_first_byte_until_the_headers_arrive() -> None:
    record = ExchangeRecord()
    assert record.phases_ms() == {}
    record._connection_started(1.0)
    record._connection_created(1.1)
    assert "first_byte" not in record.phases_ms()


async def test_concurrent_exchanges_keep_their_own_records(outbound: Outbound) -> None:
    async with LocalHttpServer() as server:
        async def fetch(path: str) -> ExchangeRecord:
            with record_exchange() as record:
                async with outbound.session().get(server.url(path)) as response:
                    record.headers_received()
                    await response.read()
            return record

        slow, fast = await asyncio.gather(fetch("/delay/0.3"), fetch("/status/200"))
    assert slow.first_byte >= 0.3 > fast.first_byte
    assert slow.connections == fast.connections == 1


async def test_requests_outside_a_record_are_not_recorded(outbound: Outbound) -> None:
    async with LocalHttpServer() as server:
        with record_exchange() as record:
            pass
        async with outbound.session().get(server.url("/status/200")) as response:
            assert response.status == 200
    assert record.connections == 0


KEY = ConnectionKey("example.test", 443, True, True, None, None, None)


@pytest.mark.parametrize(("error", "code", "message"), [
    (aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(errno.ECONNREFUSED, "refused")),
     ErrorCode.CONNECTION_REFUSED, "connection refused by example.test:443"),
    (aiohttp.ClientConnectorError(KEY, OSError(errno.ENETUNREACH, "Network is unreachable")),
     ErrorCode.CONNECTION, "cannot connect to example.test:443: Network is unreachable"),
    (aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "Name or service not known")),
     ErrorCode.DNS, "cannot resolve example.test: Name or service not known"),
    (aiohttp.ServerDisconnectedError(), ErrorCode.CONNECTION, "closed the connection"),
    (aiohttp.ClientPayloadError("x"), ErrorCode.PROTOCOL, "cut off or malformed"),
    (ssl.SSLError(1, "bad record mac"), ErrorCode.TLS, "TLS failed"),
    (aiohttp.ClientError(), ErrorCode.CONNECTION, "connection failed: ClientError"),
])
def test_an_outbound_error_is_described_for_a_person(
    error: BaseException, code: ErrorCode, message: str,
) -> None:
    described = describe_error(error)
    assert described[0] == code
    assert message in described[1]


def test_tls_settings_share_one_context_per_ca() -> None:
    ca_pem = trustme.CA().cert_pem.bytes().decode()
    assert tls_setting(verify=True) is True
    assert tls_setting(verify=False, ca=ca_pem) is False
    context = tls_setting(verify=True, ca=ca_pem)
    assert isinstance(context, ssl.SSLContext) and tls_setting(True, ca_pem) is context
