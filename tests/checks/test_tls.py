"""The tls check against loopback servers holding trustme certificates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic
import pytest

from dozor.checks._certs import _contexts
from dozor.checks.base import CheckContext
from dozor.checks.tls import TlsCheck, TlsConfig
from dozor.core.types import ErrorCode, Outcome
from tests.servers.certs import EXPIRING_IN_DAYS, CertificateSet
from tests.servers.net_fixtures import *  # noqa: F403  (the fixtures)
from tests.servers.net_fixtures import Serve


async def run(config: dict[str, Any], limit: float = 2.0) -> Outcome:
    return await TlsCheck().run(TlsConfig.model_validate(config), CheckContext(timeout=limit))


async def serve_cert(serve: Serve, certificates: CertificateSet, which: str) -> int:
    server = await serve(tls=getattr(certificates, which).server_context())
    return server.port


SUCCESSES = [
    pytest.param("valid", {"host": "127.0.0.1", "server-name": "dozor.test"},
                 id="a trusted certificate for the server name"),
    pytest.param("valid", {"host": "localhost"}, id="the host is the default server name"),
    pytest.param("valid", {"host": "127.0.0.1"}, id="an IP address in the certificate"),
    pytest.param("expiring", {"host": "localhost", "days-before-expiry": EXPIRING_IN_DAYS},
                 id="an expiring certificate within the limit"),
    pytest.param("self_signed", {"host": "localhost", "verify": False},
                 id="a self-signed certificate when verification is off"),
    pytest.param("wrong_host", {"host": "localhost", "verify": False},
                 id="a certificate for another name when verification is off"),
]


@pytest.mark.parametrize(("which", "config"), SUCCESSES)
async def test_it_is_up(
    serve: Serve, certificates: CertificateSet, which: str, config: dict[str, Any]
) -> None:
    port = await serve_cert(serve, certificates, which)
    outcome = await run({"port": port, "ca": certificates.ca_pem, **config})
    assert outcome.ok, outcome.message
    assert {"connect", "tls", "total"} <= set(outcome.phases)
    assert outcome.details["days_left"] >= EXPIRING_IN_DAYS


async def test_it_describes_the_certificate(
    serve: Serve, certificates: CertificateSet
) -> None:
    port = await serve_cert(serve, certificates, "valid")
    now = datetime.now(UTC)
    outcome = await run({"host": "localhost", "port": port, "ca": certificates.ca_pem})
    details = outcome.details
    assert set(details["sans"]) == {"localhost", "dozor.test", "127.0.0.1", "::1"}
    assert "O=trustme" in details["issuer"]
    assert details["not_after"].endswith("+00:00")
    assert datetime.fromisoformat(details["not_before"]) < now
    assert int(details["serial"], 16) > 0
    assert details["tls_version"].startswith("TLSv1.")


async def test_a_ca_file_path_is_trusted(
    serve: Serve, certificates: CertificateSet, tmp_path: Path
) -> None:
    port = await serve_cert(serve, certificates, "valid")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(certificates.ca_pem)
    outcome = await run({"host": "localhost", "port": port, "ca": str(ca_file)})
    assert outcome.ok, outcome.message


async def test_a_missing_ca_file_is_reported(serve: Serve, certificates: CertificateSet,
                                             tmp_path: Path) -> None:
    port = await serve_cert(serve, certificates, "valid")
    outcome = await run({"host": "localhost", "port": port, "ca": str(tmp_path / "no.pem")})
    assert outcome.error is ErrorCode.CONFIGURATION
    assert "cannot load the CA certificates" in (outcome.message or "")


CERTIFICATE_FAILURES = [
    pytest.param("expiring", {}, ErrorCode.CERTIFICATE_EXPIRING, None,
                 f"the certificate expires in {EXPIRING_IN_DAYS} days", id="expiring soon"),
    pytest.param("expired", {}, ErrorCode.CERTIFICATE_INVALID, "expired",
                 "the certificate has expired", id="expired"),
    pytest.param("expired", {"verify": False}, ErrorCode.CERTIFICATE_INVALID, "expired",
                 "the certificate expired on", id="expired while verification is off"),
    pytest.param("self_signed", {}, ErrorCode.CERTIFICATE_INVALID, "self_signed",
                 "self-signed", id="self-signed"),
    pytest.param("valid", {"ca": None}, ErrorCode.CERTIFICATE_INVALID, "unknown_issuer",
                 "unknown or untrusted authority", id="issued by an unknown authority"),
    pytest.param("wrong_host", {}, ErrorCode.CERTIFICATE_INVALID, "hostname_mismatch",
                 "not valid for localhost", id="for another host name"),
    pytest.param("valid", {"server-name": "other.test"}, ErrorCode.CERTIFICATE_INVALID,
                 "hostname_mismatch", "not valid for other.test", id="for another SNI name"),
]


@pytest.mark.parametrize(("which", "config", "error", "reason", "message"),
                         CERTIFICATE_FAILURES)
async def test_a_bad_certificate_is_down(
    serve: Serve, certificates: CertificateSet, which: str, config: dict[str, Any],
    error: ErrorCode, reason: str | None, message: str,
) -> None:
    port = await serve_cert(serve, certificates, which)
    outcome = await run({"host": "localhost", "port": port, "ca": certificates.ca_pem,
                         **config})
    assert outcome.error is error, outcome.message
    assert outcome.details.get("reason") == reason
    assert message in (outcome.message or "")
    # The certificate is described even when it could not be trusted.
    assert "not_after" in outcome.details and "sans" in outcome.details


CONNECTION_FAILURES = [
    pytest.param({}, 0.2, ErrorCode.TIMEOUT, "no result within 0.2s while the TLS handshake",
                 id="a server that never answers the hello"),
    pytest.param({"echo": True}, 2.0, ErrorCode.TLS, "TLS handshake failed",
                 id="a server that does not speak TLS"),
    pytest.param({"hang_up": True}, 2.0, ErrorCode.TLS, "TLS handshake failed",
                 id="a server that hangs up"),
]


@pytest.mark.parametrize(("server", "limit", "error", "message"), CONNECTION_FAILURES)
async def test_a_server_without_tls_is_down(
    serve: Serve, server: dict[str, Any], limit: float, error: ErrorCode, message: str
) -> None:
    port = (await serve(**server)).port
    outcome = await run({"host": "127.0.0.1", "port": port}, limit)
    assert outcome.error is error, outcome.message
    assert message in (outcome.message or "")


async def test_a_closed_port_is_refused(closed_port: int) -> None:
    outcome = await run({"host": "127.0.0.1", "port": closed_port})
    assert outcome.error is ErrorCode.CONNECTION_REFUSED


async def test_an_unknown_host_is_a_dns_error(fake_names: dict[str, list[str]]) -> None:
    outcome = await run({"host": "nowhere.dozor.test"})
    assert outcome.error is ErrorCode.DNS


async def test_ssl_contexts_are_reused(serve: Serve, certificates: CertificateSet) -> None:
    _contexts.clear()
    port = await serve_cert(serve, certificates, "valid")
    for _ in range(2):
        await run({"host": "localhost", "port": port, "ca": certificates.ca_pem})
    assert len(_contexts._entries) == 1


INVALID = [
    pytest.param({}, "host", id="no host"),
    pytest.param({"host": "h", "port": -1}, "port", id="a negative port"),
    pytest.param({"host": "h", "days-before-expiry": -1}, "days-before-expiry",
                 id="negative days"),
    pytest.param({"host": "h", "ca": "relative.pem"}, "ca", id="a relative ca path"),
    pytest.param({"host": "h", "server-name": ""}, "server-name", id="an empty server name"),
    pytest.param({"host": "h", "sni": "x"}, "sni", id="an unknown field"),
]


@pytest.mark.parametrize(("config", "field"), INVALID)
def test_invalid_config_names_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        TlsConfig.model_validate(config)
    assert field in str(raised.value)
