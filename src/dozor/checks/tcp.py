"""The ``tcp`` check: a port accepts connections, optionally speaks TLS and answers.

    kind: tcp
    host: mail.example.org
    port: 25
    expect: "220 "          # read until this text arrives (the SMTP banner)

With ``send`` the check writes that text first (``"PING\\r\\n"``), so simple line
protocols such as Redis or memcached can be probed without a dedicated kind.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, Field, model_validator

from dozor.checks._certs import check_ca, client_context, handshake, tls_details
from dozor.checks._net import (
    CheckFailure,
    Family,
    Host,
    Stopwatch,
    close_stream,
    connect,
    describe_os_error,
    resolve,
    timeout_failure,
)
from dozor.checks.base import CheckConfig, CheckContext, register
from dozor.core.types import ErrorCode, Outcome
from dozor.outbound import AddressPolicy

READ_CHUNK = 4096
READ_LIMIT = 64 * 1024  # a banner or reply bigger than this will not contain the text later
EXCERPT = 200  # characters of an unexpected answer shown to people


class TcpConfig(CheckConfig):
    """Where to connect and what to say.

    >>> TcpConfig.model_validate({"host": "db.internal", "port": 5432, "tls": True}).verify
    True
    """

    host: Host
    port: int = Field(ge=1, le=65535)
    send: str | None = Field(default=None, min_length=1)
    expect: str | None = Field(default=None, min_length=1)
    tls: bool = False
    verify: bool = True  # check the certificate chain and host name (with tls)
    server_name: str | None = Field(default=None, min_length=1)  # SNI; default: host
    ca: Annotated[str | None, AfterValidator(check_ca)] = None  # PEM text or path
    family: Family = "any"

    @model_validator(mode="after")
    def _tls_options_need_tls(self) -> Self:
        if not self.tls and (self.server_name or self.ca):
            raise ValueError("server-name and ca only apply with tls: true")
        return self

    def target_host(self) -> str | None:
        return self.host


@register
class TcpCheck:
    kind: ClassVar[str] = "tcp"
    Config: ClassVar[type[CheckConfig]] = TcpConfig

    async def run(self, config: TcpConfig, ctx: CheckContext) -> Outcome:
        deadline = asyncio.get_running_loop().time() + ctx.timeout
        probe = _Probe(config, deadline, ctx.policy)
        try:
            async with asyncio.timeout_at(deadline):
                return await probe.run()
        except TimeoutError:
            return probe.timed_out(ctx.timeout)
        except CheckFailure as failure:
            return failure.outcome(probe.watch)


class _Probe:
    """One run's state, kept outside the coroutine so a timeout can still report it."""

    def __init__(self, config: TcpConfig, deadline: float,
                 policy: AddressPolicy | None) -> None:
        self.config = config
        self.policy = policy
        self.deadline = deadline
        self.watch = Stopwatch()
        self.received = bytearray()

    async def run(self) -> Outcome:
        config = self.config
        context = await client_context(config.verify, config.ca) if config.tls else None
        addresses = await resolve(config.host, config.port, config.family, self.watch,
                                  self.policy)
        reader, writer = await connect(addresses, config.port, self.watch)
        try:
            details: dict[str, Any] = {"address": writer.get_extra_info("peername")[0]}
            if context is not None:
                await handshake(writer, context, config.server_name or config.host, self.watch)
                details.update(tls_details(writer))
            await self._converse(reader, writer)
        finally:
            self.watch.stop()
            await close_stream(writer, self.deadline)
        outcome = Outcome.up(self.watch.total(), **details)
        outcome.phases = self.watch.finish()
        return outcome

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.config.send is not None:
                writer.write(self.config.send.encode())
                await writer.drain()
            if self.config.expect is not None:
                await self._read_until(reader, self.config.expect.encode())
        except OSError as error:
            raise CheckFailure(ErrorCode.CONNECTION, "the connection failed while talking to "
                               f"the server: {describe_os_error(error)}") from None

    async def _read_until(self, reader: asyncio.StreamReader, needle: bytes) -> None:
        with self.watch.phase("first_byte"):
            chunk = await reader.read(READ_CHUNK)
        self.watch.current = "answer"
        self.received += chunk
        while chunk and needle not in self.received and len(self.received) < READ_LIMIT:
            chunk = await reader.read(READ_CHUNK)
            self.received += chunk
        if needle not in self.received:
            why = "the server closed the connection" if not chunk else "read limit reached"
            raise self._unexpected(why)

    def _unexpected(self, why: str) -> CheckFailure:
        if not self.received:
            return CheckFailure(ErrorCode.UNEXPECTED_ANSWER, f"{why} without answering")
        text = self.received[:EXCERPT].decode(errors="replace")
        return CheckFailure(ErrorCode.UNEXPECTED_ANSWER,
                            f"expected {self.config.expect!r} but {why} after {text!r}",
                            received=text)

    def timed_out(self, seconds: float) -> Outcome:
        if self.received:  # it did answer, just not what was expected
            return self._unexpected(f"nothing more came within {seconds:g}s").outcome(self.watch)
        return timeout_failure(self.watch, seconds).outcome(self.watch)
