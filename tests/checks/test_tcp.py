"""The tcp check against loopback servers: each success and each way to fail."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

from dozor.checks.base import CheckContext
from dozor.checks.tcp import TcpCheck, TcpConfig
from dozor.core.types import ErrorCode, Outcome
from tests.servers.certs import CertificateSet
from tests.servers.net_fixtures import *  # noqa: F403  (the fixtures)
from tests.servers.net_fixtures import Serve


async def run(config: dict[str, Any], limit: float = 2.0) -> Outcome:
    return await TcpCheck().run(TcpConfig.model_validate(config), CheckContext(timeout=limit))


async def start(serve: Serve, certificates: CertificateSet, options: dict[str, Any]) -> int:
    """Start a server from a table row: ``tls`` names a certificate of the set."""
    options = dict(options)
    if "tls" in options:
        options["tls"] = getattr(certificates, options["tls"]).server_context()
    return (await serve(**options)).port


SUCCESSES = [
    pytest.param({}, {}, {"connect", "total"}, id="a listening port is up"),
    pytest.param({}, {"host": "localhost"}, {"dns", "connect", "total"},
                 id="a host name is resolved and timed"),
    pytest.param({"banner": b"220 smtp ready\r\n"}, {"expect": "220 "},
                 {"connect", "first_byte", "total"}, id="a banner with the expected text"),
    pytest.param({"echo": True}, {"send": "PING\r\n", "expect": "PING"},
                 {"connect", "first_byte", "total"}, id="the answer to what was sent"),
    pytest.param({"echo": True}, {"send": "hello"}, {"connect", "total"},
                 id="sending without expecting"),
    pytest.param({"tls": "valid"}, {"tls": True, "ca": "CA", "server-name": "dozor.test"},
                 {"connect", "tls", "total"}, id="tls with a trusted certificate"),
    pytest.param({"tls": "self_signed", "banner": b"+OK"},
                 {"tls": True, "verify": False, "expect": "+OK"},
                 {"connect", "tls", "first_byte", "total"},
                 id="tls without verification accepts a self-signed certificate"),
]


@pytest.mark.parametrize(("server", "config", "phases"), SUCCESSES)
async def test_it_is_up(
    serve: Serve, certificates: CertificateSet,
    server: dict[str, Any], config: dict[str, Any], phases: set[str],
) -> None:
    port = await start(serve, certificates, server)
    if config.get("ca") == "CA":
        config = {**config, "ca": certificates.ca_pem}
    outcome = await run({"host": "127.0.0.1", "port": port, **config})
    assert outcome.ok, outcome.message
    assert set(outcome.phases) == phases
    assert outcome.latency_ms is not None and outcome.latency_ms > 0
    assert outcome.details["address"] == "127.0.0.1"


async def test_it_connects_over_ipv6(serve: Serve) -> None:
    server = await serve(host="::1", banner=b"hi")
    outcome = await run({"host": "[::1]", "port": server.port, "expect": "hi"})
    assert outcome.ok, outcome.message
    assert outcome.details["address"] == "::1"


async def test_it_reports_the_tls_version(
    serve: Serve, certificates: CertificateSet,
) -> None:
    port = await start(serve, certificates, {"tls": "valid"})
    outcome = await run({"host": "localhost", "port": port, "tls": True,
                         "ca": certificates.ca_pem})
    assert outcome.ok, outcome.message
    assert outcome.details["tls_version"].startswith("TLSv1.")


FAILURES = [
    pytest.param({"hang_up": True}, {"expect": "220"}, 2.0, ErrorCode.UNEXPECTED_ANSWER,
                 "closed the connection without answering", id="closed without a word"),
    pytest.param({"banner": b"500 go away\r\n", "hang_up": True}, {"expect": "220"}, 2.0,
                 ErrorCode.UNEXPECTED_ANSWER, "500 go away", id="closed after a wrong banner"),
    pytest.param({"banner": b"500 busy"}, {"expect": "220"}, 0.2,
                 ErrorCode.UNEXPECTED_ANSWER, "nothing more came within 0.2s",
                 id="a wrong banner then silence"),
    pytest.param({}, {"expect": "220"}, 0.2, ErrorCode.TIMEOUT,
                 "no result within 0.2s while waiting for an answer", id="silence"),
    pytest.param({}, {"tls": True, "verify": False}, 0.2, ErrorCode.TIMEOUT,
                 "while the TLS handshake", id="a plain server that ignores a TLS hello"),
    pytest.param({"echo": True}, {"tls": True, "verify": False}, 2.0, ErrorCode.TLS,
                 "TLS handshake failed", id="a plain server that answers garbage to tls"),
    pytest.param({"tls": "self_signed"}, {"tls": True}, 2.0, ErrorCode.CERTIFICATE_INVALID,
                 "self-signed", id="an untrusted certificate"),
    pytest.param({"tls": "valid"}, {"tls": True, "ca": "CA", "server-name": "other.test"},
                 2.0, ErrorCode.CERTIFICATE_INVALID, "not valid for other.test",
                 id="a certificate for another name"),
]


@pytest.mark.parametrize(("server", "config", "limit", "error", "message"), FAILURES)
async def test_it_is_down(
    serve: Serve, certificates: CertificateSet,
    server: dict[str, Any], config: dict[str, Any], limit: float,
    error: ErrorCode, message: str,
) -> None:
    port = await start(serve, certificates, server)
    if config.get("ca") == "CA":
        config = {**config, "ca": certificates.ca_pem}
    outcome = await run({"host": "127.0.0.1", "port": port, **config}, limit)
    assert not outcome.ok
    assert outcome.error is error, outcome.message
    assert message in (outcome.message or "")
    assert "total" in outcome.phases


async def test_a_closed_port_is_refused(closed_port: int) -> None:
    outcome = await run({"host": "127.0.0.1", "port": closed_port})
    assert outcome.error is ErrorCode.CONNECTION_REFUSED
    assert outcome.message == f"connection refused by 127.0.0.1:{closed_port}"


async def test_an_unknown_host_is_a_dns_error(fake_names: dict[str, list[str]]) -> None:
    outcome = await run({"host": "nowhere.dozor.test", "port": 80})
    assert outcome.error is ErrorCode.DNS
    assert outcome.message == "cannot resolve nowhere.dozor.test: Name or service not known"


async def test_every_address_of_a_host_is_tried(
    serve: Serve, closed_port: int, fake_names: dict[str, list[str]],
) -> None:
    server = await serve(banner=b"ok")
    fake_names["db.dozor.test"] = ["::1", "127.0.0.1"]  # nothing listens on ::1
    outcome = await run({"host": "db.dozor.test", "port": server.port, "expect": "ok"})
    assert outcome.ok, outcome.message
    assert outcome.details["address"] == "127.0.0.1"


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full, so new connections hang in SYN_SENT."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    waiting = []
    for _ in range(3):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        waiting.append(client)
    yield port
    for client in waiting:
        client.close()
    listener.close()


async def test_a_connection_that_never_completes_times_out(full_backlog: int) -> None:
    outcome = await run({"host": "127.0.0.1", "port": full_backlog}, limit=0.3)
    assert outcome.error is ErrorCode.TIMEOUT
    assert outcome.message == "no result within 0.3s while connecting"
    assert set(outcome.phases) == {"total"}


INVALID = [
    pytest.param({"host": "127.0.0.1", "port": 0}, "port", id="port zero"),
    pytest.param({"host": "127.0.0.1", "port": 65536}, "port", id="port too big"),
    pytest.param({"port": 80}, "host", id="no host"),
    pytest.param({"host": "http://example.org", "port": 80}, "host", id="a url as host"),
    pytest.param({"host": "a", "port": 1, "expect": ""}, "expect", id="an empty expect"),
    pytest.param({"host": "a", "port": 1, "ca": "ca.pem", "tls": True}, "ca",
                 id="a relative ca path"),
    pytest.param({"host": "a", "port": 1, "ca": "-----BEGIN CERTIFICATE-----\nxx"}, "ca",
                 id="a broken inline ca"),
    pytest.param({"host": "a", "port": 1, "server-name": "a"}, "tls",
                 id="a server name without tls"),
    pytest.param({"host": "a", "port": 1, "timeout": 3}, "timeout", id="an unknown field"),
]


@pytest.mark.parametrize(("config", "field"), INVALID)
def test_invalid_config_names_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        TcpConfig.model_validate(config)
    assert field in str(raised.value)


def test_kebab_case_names_are_accepted() -> None:
    config = TcpConfig.model_validate({"host": "h", "port": 1, "tls": True,
                                       "server-name": "sni.test"})
    assert config.server_name == "sni.test"
    assert config.target_host() == "h"
