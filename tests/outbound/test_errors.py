"""How outbound failures read to a person, and which TLS context a setting gives."""

from __future__ import annotations

import errno
import ssl

import aiohttp
import pytest
import trustme
from aiohttp.client_reqrep import ConnectionKey

from dozor.core.types import ErrorCode
from dozor.outbound import ExchangeError, describe_error, tls_setting
from dozor.outbound.tls import client_context

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
    (ExchangeError(ErrorCode.DNS, "cannot resolve x.test"), ErrorCode.DNS, "resolve x.test"),
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
    assert client_context(context) is context


def test_turning_verification_off_still_keeps_the_peer_certificate_readable() -> None:
    unverified = client_context(False)
    assert unverified.verify_mode == ssl.CERT_NONE and not unverified.check_hostname
    assert client_context(True).verify_mode == ssl.CERT_REQUIRED
    assert client_context(True) is client_context(True)
