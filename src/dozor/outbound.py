"""The one place Dozor makes outbound HTTP requests from (checks, RDAP, later webhooks).

It owns the aiohttp sessions, so every request gets the same user agent and connection
rules (and, with accounts, the same guard against private targets). Monitoring wants a fresh
connection per check (a reused one would hide DNS, connect and TLS times), so the
connectors close connections after each request and never cache DNS answers.

>>> async def fetch(outbound: Outbound) -> int:
...     async with outbound.session().get("http://127.0.0.1:8000/healthz") as response:
...         return response.status

Requests made inside :func:`record_exchange` have their time split into phases, and the
peer they reached noted::

    with record_exchange() as record:
        async with outbound.session().get(url) as response:
            record.headers_received()
            ...
    record.phases_ms()  # {"dns": 0.4, "connect": 0.2, "tls": 3.1, "first_byte": 12.0}
    record.peer_ip      # "203.0.113.7"
"""

from __future__ import annotations

import asyncio
import errno
import functools
import socket
import ssl
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_proto import ResponseHandler

from dozor.core.types import ErrorCode

FAMILIES = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


def tls_setting(verify: bool, ca: str | None = None) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl=`` for a request: True checks against the system's CAs, False checks
    nothing, and a context trusts only ``ca`` (a PEM file's path, or the PEM itself).

    Raises ValueError if the CA cannot be read or is not PEM. Call it when a config is
    validated: it may read a (small) file.

    >>> tls_setting(verify=False, ca="/any/ca.pem")
    False
    """
    if not verify:
        return False
    return _ca_context(_read_pem(ca)) if ca is not None else True


def _read_pem(value: str) -> str:
    if "-----BEGIN" in value:
        return value
    try:
        return Path(value).expanduser().read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not a text file"
        raise ValueError(f"cannot read the CA file {value}: {reason}") from None


@functools.lru_cache(maxsize=128)
def _ca_context(pem: str) -> ssl.SSLContext:
    """One TLS context per CA, shared by every request that trusts it."""
    try:
        return ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise ValueError("the CA is not a PEM certificate") from None


class Outbound:
    def __init__(
        self,
        user_agent: str,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.user_agent = user_agent
        # Phases come from the connector and resolver hooks below, not from aiohttp's
        # traces: traces build objects and await signals on every request, which made
        # checks about a third more expensive.
        self._resolver = resolver  # None: the system resolver (tests pass a fake)
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._api: aiohttp.ClientSession | None = None

    def api_session(self) -> aiohttp.ClientSession:
        """The shared session for provider APIs (SMS, chat, webhooks): unlike checks, these
        keep connections alive and cache DNS, so a burst of messages is not a burst of
        handshakes. Callers bound each request with ``asyncio.timeout``."""
        if self._api is None or self._api.closed:
            connector = aiohttp.TCPConnector(
                limit=200, limit_per_host=50, ttl_dns_cache=60,
                resolver=self._resolver or aiohttp.DefaultResolver(),
            )
            self._api = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.user_agent},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=None),
            )
        return self._api

    def session(self, family: str = "any") -> aiohttp.ClientSession:
        """The shared session for an address family: ``any``, ``ipv4`` or ``ipv6``."""
        session = self._sessions.get(family)
        if session is None or session.closed:
            connector = PhaseTimingConnector(
                family=FAMILIES[family], limit=0, force_close=True, use_dns_cache=False,
                resolver=TimingResolver(self._resolver or aiohttp.DefaultResolver()),
            )
            session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.user_agent},
                # No aiohttp timers: every caller bounds its request with asyncio.timeout
                # (one timer per request instead of three).
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=None),
                auto_decompress=True,
            )
            self._sessions[family] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
        if self._api is not None:
            await self._api.close()
            self._api = None


@dataclass(slots=True)
class ExchangeRecord:
    """What the requests made inside :func:`record_exchange` met on their way.

    The peer is the last connection's: its IP and, over TLS, its certificate (DER).

    Times are in seconds. Each phase is its own duration, summed over redirect hops:
    ``dns`` (name lookup; 0 for an IP address), ``connect`` (TCP), ``tls`` (handshake;
    None for plain HTTP, or when it could not be told apart from ``connect``, which then
    includes it) and ``first_byte`` (from the connection being ready to the response
    headers having arrived).
    """

    peer_ip: str | None = None
    peer_certificate: bytes | None = None
    dns: float = 0.0
    connect: float = 0.0
    tls: float | None = None
    first_byte: float = 0.0
    connections: int = 0
    tls_unseparated: bool = False
    # The hop in progress, as time.perf_counter() moments.
    _created_at: float = 0.0
    _dns_at: float = 0.0
    _hop_dns: float = 0.0
    _tcp_at: float | None = None
    _hop_tls: bool = False
    _ready_at: float | None = None

    def phases_ms(self) -> dict[str, float]:
        """The phases measured so far, in milliseconds (only those that happened)."""
        if not self.connections:
            return {}
        phases = {"dns": self.dns * 1000, "connect": self.connect * 1000}
        if self.tls is not None and not self.tls_unseparated:
            phases["tls"] = self.tls * 1000
        if self._ready_at is None:  # the last hop's headers arrived
            phases["first_byte"] = self.first_byte * 1000
        return phases

    def _connection_started(self, now: float) -> None:
        self._headers_received(now)  # a redirect: the previous hop's headers came before
        self._created_at, self._hop_dns, self._tcp_at = now, 0.0, None

    def _dns_started(self, now: float) -> None:
        self._dns_at = now

    def _dns_ended(self, now: float) -> None:
        self.dns += now - self._dns_at
        self._hop_dns += now - self._dns_at

    def _tcp_connected(self, now: float, tls: bool) -> None:
        self._tcp_at, self._hop_tls = now, tls

    def _connection_created(self, now: float) -> None:
        self.connections += 1
        if self._tcp_at is None:  # the connector hook did not run: TCP and TLS together
            self.connect += now - self._created_at - self._hop_dns
            self.tls_unseparated = True
        else:
            self.connect += self._tcp_at - self._created_at - self._hop_dns
            if self._hop_tls:
                self.tls = (self.tls or 0.0) + now - self._tcp_at
            else:  # building the protocol of a plain connection: part of connecting
                self.connect += now - self._tcp_at
        self._ready_at = now

    def headers_received(self) -> None:
        """Mark the moment the (last) response's headers arrived."""
        self._headers_received(time.perf_counter())

    def _headers_received(self, now: float) -> None:
        if self._ready_at is not None:
            self.first_byte += now - self._ready_at
            self._ready_at = None

    def _connected_to(self, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        self.peer_ip = peer[0] if peer else None
        tls = transport.get_extra_info("ssl_object")
        self.peer_certificate = tls.getpeercert(binary_form=True) if tls else None


_current: ContextVar[ExchangeRecord | None] = ContextVar("dozor_outbound", default=None)


class record_exchange:  # noqa: N801 (used like a function: ``with record_exchange()``)
    """Record the phases and peer of the requests made inside the block.

    A class rather than a generator-based context manager: it runs on every check.
    """

    __slots__ = ("record", "_token")

    def __enter__(self) -> ExchangeRecord:
        self.record = ExchangeRecord()
        self._token = _current.set(self.record)
        return self.record

    def __exit__(self, *_: object) -> None:
        _current.reset(self._token)


class PhaseTimingConnector(aiohttp.TCPConnector):
    """A TCPConnector that notes when a connection is started, when TCP connected (before
    any TLS handshake) and when the connection is ready.

    aiohttp's traces see creating a connection only as a whole (TCP and TLS together).
    aiohttp first connects the socket (``aiohappyeyeballs.start_connection``), then calls
    ``loop.create_connection(protocol_factory, sock=..., ssl=...)``, which builds the
    protocol at once and only then runs the TLS handshake. So wrapping the factory
    passed to the private ``_wrap_create_connection`` marks the end of the TCP connect.
    ``tests/checks/test_http.py`` proves it against a server that delays its handshake;
    if aiohttp stops calling the hook, the record reports connect with TLS inside.
    """

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109
        record = _current.get()
        if record is None:
            return await super().connect(req, traces, timeout)
        record._connection_started(time.perf_counter())
        connection = await super().connect(req, traces, timeout)
        record._connection_created(time.perf_counter())
        return connection

    async def _wrap_create_connection(
        self, *args: Any, **kwargs: Any
    ) -> tuple[asyncio.Transport, ResponseHandler]:
        record = _current.get()
        if record is None or not args:
            return await super()._wrap_create_connection(*args, **kwargs)
        factory: Callable[[], ResponseHandler] = args[0]
        tls = bool(kwargs.get("ssl"))

        def timed_factory() -> ResponseHandler:
            record._tcp_connected(time.perf_counter(), tls)
            return factory()

        transport, protocol = await super()._wrap_create_connection(
            timed_factory, *args[1:], **kwargs)
        record._connected_to(transport)
        return transport, protocol


class TimingResolver(AbstractResolver):
    """Wraps a resolver to note how long each lookup takes (IP addresses skip it)."""

    def __init__(self, inner: AbstractResolver) -> None:
        self.inner = inner

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        record = _current.get()
        if record is None:
            return await self.inner.resolve(host, port, family)
        record._dns_started(time.perf_counter())
        try:
            return await self.inner.resolve(host, port, family)
        finally:
            record._dns_ended(time.perf_counter())

    async def close(self) -> None:
        await self.inner.close()


def describe_error(error: BaseException) -> tuple[ErrorCode, str]:
    """Why an outbound request failed, as an error code and a sentence for a person.

    Timeouts are left to the caller, who knows the limit. Messages never contain the
    request's URL or headers, so credentials in them can't leak.

    >>> describe_error(aiohttp.ServerDisconnectedError())
    (<ErrorCode.CONNECTION: 4>, 'the server closed the connection without answering')
    """
    if isinstance(error, aiohttp.ClientConnectorError):
        return _describe_connect_error(error)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return ErrorCode.CONNECTION, "the server closed the connection without answering"
    if isinstance(error, aiohttp.TooManyRedirects):
        return ErrorCode.PROTOCOL, f"too many redirects (gave up after {len(error.history)})"
    if isinstance(error, aiohttp.RedirectClientError):
        return ErrorCode.PROTOCOL, "redirected to an invalid or non-HTTP URL"
    if isinstance(error, aiohttp.ClientPayloadError):
        return ErrorCode.PROTOCOL, "the response body was cut off or malformed"
    if isinstance(error, aiohttp.ClientResponseError):
        return ErrorCode.PROTOCOL, f"invalid HTTP response: {error.message}"
    if isinstance(error, ssl.SSLError):
        return ErrorCode.TLS, f"TLS failed: {getattr(error, 'reason', None) or error.strerror}"
    if isinstance(error, OSError) and error.strerror:
        return ErrorCode.CONNECTION, f"connection failed: {error.strerror}"
    return ErrorCode.CONNECTION, f"connection failed: {type(error).__name__}"


def _describe_connect_error(error: aiohttp.ClientConnectorError) -> tuple[ErrorCode, str]:
    where = f"{error.host}:{error.port}"
    reason = error.os_error.strerror or str(error.os_error) or type(error.os_error).__name__
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return ErrorCode.DNS, f"cannot resolve {error.host}: {reason}"
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        problem = error.certificate_error
        detail = getattr(problem, "verify_message", None) or getattr(problem, "reason", None)
        return ErrorCode.CERTIFICATE_INVALID, f"invalid certificate at {where}: {detail}"
    if isinstance(error, aiohttp.ClientSSLError):
        detail = getattr(error.os_error, "reason", None) or reason
        return ErrorCode.TLS, f"TLS handshake with {where} failed: {detail}"
    if error.os_error.errno == errno.ECONNREFUSED:
        return ErrorCode.CONNECTION_REFUSED, f"connection refused by {where}"
    return ErrorCode.CONNECTION, f"cannot connect to {where}: {reason}"
