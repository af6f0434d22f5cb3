"""A local SMTP server (aiosmtpd) on loopback and an ephemeral port, in the test's loop.

It records what it accepted, and refuses what a test tells it to::

    async with SmtpServer(security="starttls", tls=cert.server_context(),
                          users={"alerts": "s3cret"}) as server:
        server.refuse_rcpt["gone@example.com"] = "550 5.1.1 No such user"
        ...                                 # send to 127.0.0.1:server.port
        received = server.received[-1]     # envelope, raw bytes, parsed message

``security``: ``none`` (plain), ``starttls`` (STARTTLS offered and required before
MAIL) or ``tls`` (TLS from the first byte). With ``users``, AUTH is required; aiosmtpd
offers it only over TLS. ``hang_on_quit`` makes the server never answer QUIT.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import ssl
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    raw: bytes
    tls: bool  # the session was encrypted (STARTTLS or implicit TLS)
    login: str | None  # the user it logged in as

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def header_line(self, name: str) -> str:
        """A header exactly as it was sent, folds and all (without the final CRLF)."""
        head = self.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
        lines = head.split("\r\n")
        for index, line in enumerate(lines):
            if line.lower().startswith(name.lower() + ":"):
                folds = itertools.takewhile(lambda rest: rest[:1] in (" ", "\t"),
                                            lines[index + 1:])
                return "\r\n".join([line, *folds])
        raise KeyError(name)


@dataclass
class SmtpServer:
    security: Security = "none"
    tls: ssl.SSLContext | None = None
    users: dict[str, str] = field(default_factory=dict)
    smtputf8: bool = False
    hang_on_quit: bool = False
    # Address -> the reply that refuses it, at MAIL FROM, at RCPT TO, or after DATA.
    refuse_mail: dict[str, str] = field(default_factory=dict)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    refuse_data: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    _server: asyncio.Server | None = None
    _sessions: list[SMTP] = field(default_factory=list)

    async def __aenter__(self) -> SmtpServer:
        if self.security != "none" and self.tls is None:
            raise ValueError(f"security {self.security} needs a TLS context")
        loop = asyncio.get_running_loop()
        implicit = self.tls if self.security == "tls" else None
        self._server = await loop.create_server(self._session, self.host, 0, ssl=implicit)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for session in self._sessions:
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let the closed sessions' tasks see their cancellation

    def _session(self) -> SMTP:
        starttls = self.security == "starttls"
        with warnings.catch_warnings():
            # aiosmtpd warns when AUTH may go without STARTTLS; with implicit TLS every
            # byte is encrypted already, which aiosmtpd cannot tell.
            warnings.simplefilter("ignore")
            session = SMTP(
                _Handler(self), hostname="mail.dozor.test", loop=asyncio.get_running_loop(),
                tls_context=self.tls if starttls else None, require_starttls=starttls,
                auth_required=bool(self.users), auth_require_tls=self.security != "tls",
                authenticator=self._authenticate, enable_SMTPUTF8=self.smtputf8,
            )
        self._sessions.append(session)
        return session

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        # handled=False: let aiosmtpd answer 535 itself (handled=True would leave it silent).
        return AuthResult(success=self.users.get(login) == password, handled=False,
                          auth_data=login)


class _Handler:
    """aiosmtpd's hooks: refuse what the server was told to, record the rest."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(self, smtp: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        if address in self.server.refuse_mail:
            return self.server.refuse_mail[address]
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, smtp: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        if address in self.server.refuse_rcpt:
            return self.server.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            if address in self.server.refuse_data:
                return self.server.refuse_data[address]
        assert envelope.mail_from is not None and isinstance(envelope.content, bytes)
        self.server.received.append(Received(
            envelope.mail_from, list(envelope.rcpt_tos), list(envelope.mail_options),
            envelope.content, tls=session.ssl is not None or self.server.security == "tls",
            login=session.auth_data if session.authenticated else None))
        return f"250 2.0.0 Ok: queued as Q{len(self.server.received)}"

    async def handle_QUIT(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        if self.server.hang_on_quit:
            await asyncio.Event().wait()  # until the client hangs up
        return "221 Bye"
