"""The ``tls`` check: a server's certificate is trusted, matches its name and is not
about to expire.

    kind: tls
    host: example.org
    days-before-expiry: 21   # fewer days left is down (CERTIFICATE_EXPIRING)

The certificate is parsed from its DER bytes, so its dates and names are reported also
when verification fails or is turned off.
"""

from __future__ import annotations

import asyncio
import ssl
from datetime import datetime
from typing import Annotated, Any, ClassVar

from cryptography import x509
from pydantic import AfterValidator, Field

from dozor.checks._certs import (
    check_ca,
    client_context,
    days_left,
    describe_certificate,
    handshake,
    peer_certificate,
    tls_details,
)
from dozor.checks._net import (
    CheckFailure,
    Family,
    Host,
    Stopwatch,
    close_stream,
    connect,
    resolve,
    timeout_failure,
)
from dozor.checks.base import CheckConfig, CheckContext, register
from dozor.core.types import ErrorCode, Outcome


class TlsConfig(CheckConfig):
    """Which server to ask, under which name, and how much notice to want.

    >>> TlsConfig.model_validate({"host": "example.org"}).days_before_expiry
    14
    """

    host: Host
    port: int = Field(default=443, ge=1, le=65535)
    server_name: str | None = Field(default=None, min_length=1)  # SNI; default: host
    days_before_expiry: int = Field(default=14, ge=0, le=3650)
    verify: bool = True  # check the chain of trust and the host name
    ca: Annotated[str | None, AfterValidator(check_ca)] = None  # PEM text or path
    family: Family = "any"

    def target_host(self) -> str | None:
        return self.host


@register
class TlsCheck:
    kind: ClassVar[str] = "tls"
    Config: ClassVar[type[CheckConfig]] = TlsConfig

    async def run(self, config: TlsConfig, ctx: CheckContext) -> Outcome:
        deadline = asyncio.get_running_loop().time() + ctx.timeout
        inspection = _Inspection(config, ctx, deadline)
        try:
            async with asyncio.timeout_at(deadline):
                certificate, tls = await inspection.fetch(config.verify, inspection.watch)
        except TimeoutError:
            return timeout_failure(inspection.watch, ctx.timeout).outcome(inspection.watch)
        except CheckFailure as failure:
            if failure.error is not ErrorCode.CERTIFICATE_INVALID:
                return failure.outcome(inspection.watch)
            details = await inspection.describe_unverified()
            return failure.outcome(inspection.watch, **details)
        return inspection.judge(certificate, tls)


class _Inspection:
    def __init__(self, config: TlsConfig, ctx: CheckContext, deadline: float) -> None:
        self.config = config
        self.deadline = deadline
        self.now = ctx.now
        self.policy = ctx.policy
        self.name = config.server_name or config.host
        self.watch = Stopwatch()
        self.addresses: list[str] = []

    async def fetch(
        self, verify: bool, watch: Stopwatch
    ) -> tuple[x509.Certificate, dict[str, Any]]:
        """Handshake and return the server's certificate and the negotiated parameters."""
        context = await client_context(verify, self.config.ca)
        if not self.addresses:
            self.addresses = await resolve(self.config.host, self.config.port,
                                           self.config.family, watch, self.policy)
        _reader, writer = await connect(self.addresses, self.config.port, watch)
        try:
            await handshake(writer, context, self.name, watch)
            certificate = peer_certificate(writer)
            tls = tls_details(writer)
        finally:
            watch.stop()
            await close_stream(writer, self.deadline)
        if certificate is None:
            raise CheckFailure(ErrorCode.TLS, "the server sent no certificate")
        return certificate, tls

    async def describe_unverified(self) -> dict[str, Any]:
        """The certificate's facts for an untrusted server: a second handshake without
        verification, as far as the time left allows. Best effort: {} when it fails."""
        try:
            async with asyncio.timeout_at(self.deadline):
                certificate, _tls = await self.fetch(False, Stopwatch())
        except (TimeoutError, CheckFailure, OSError, ssl.SSLError):
            return {}
        return describe_certificate(certificate, self.now)

    def judge(self, certificate: x509.Certificate, tls: dict[str, Any]) -> Outcome:
        details = {**describe_certificate(certificate, self.now), **tls}
        failure = self._date_failure(certificate)
        if failure is not None:
            return failure.outcome(self.watch, **details)
        outcome = Outcome.up(self.watch.total(), **details)
        outcome.phases = self.watch.finish()
        return outcome

    def _date_failure(self, certificate: x509.Certificate) -> CheckFailure | None:
        # Verification catches bad dates too, but not with verify off: check them here.
        left = days_left(certificate, self.now)
        until = _day(certificate.not_valid_after_utc)
        if certificate.not_valid_after_utc <= self.now:
            return CheckFailure(ErrorCode.CERTIFICATE_INVALID,
                                f"the certificate expired on {until}", reason="expired")
        if certificate.not_valid_before_utc > self.now:
            since = _day(certificate.not_valid_before_utc)
            return CheckFailure(ErrorCode.CERTIFICATE_INVALID,
                                f"the certificate is valid only from {since}",
                                reason="not_yet_valid")
        if left < self.config.days_before_expiry:
            return CheckFailure(
                ErrorCode.CERTIFICATE_EXPIRING,
                f"the certificate expires in {left} day{'s' * (left != 1)}, on {until} "
                f"(the limit is {self.config.days_before_expiry} days)",
            )
        return None


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
