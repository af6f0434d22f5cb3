"""Plumbing shared by the checks that open sockets themselves (tcp, tls, ping, dns).

A check's helpers raise :class:`CheckFailure` for anything that is the target's fault;
``run`` turns it into ``Outcome.down``. That keeps the helpers short and lets every
failure carry the timings measured up to the point it happened.

>>> async def example() -> None:
...     watch = Stopwatch()
...     addresses = await resolve("localhost", 80, "any", watch)
...     reader, writer = await connect(addresses, 80, watch)
...     await close_stream(writer)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BeforeValidator

from dozor.core.durations import parse_duration
from dozor.core.types import ErrorCode, Outcome
from dozor.outbound import AddressPolicy

Family = Literal["any", "ipv4", "ipv6"]
FAMILIES = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}

# A peer that ignores our close_notify must not keep a finished check waiting.
CLOSE_TIMEOUT = 1.0
CLOSE_MARGIN = 0.01  # stop closing before the run's own time limit fires


def _check_host(value: str) -> str:
    host = value.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # people paste IPv6 literals the way URLs spell them
    if not host or any(char in host for char in "/ \t@?#"):
        raise ValueError("must be a host name or an IP address, not a URL")
    return host


Host = Annotated[str, AfterValidator(_check_host)]
"""A host name or IP literal; ``[::1]`` is accepted and stored as ``::1``."""


def _to_seconds(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value).total_seconds()
    return value  # numbers are seconds; pydantic checks the rest


Seconds = Annotated[float, BeforeValidator(_to_seconds)]
"""A duration in seconds, written as a number of seconds or as ``500ms``, ``2s``."""


class CheckFailure(Exception):
    """The target failed in a way a person should read about; never a bug in Dozor."""

    def __init__(self, error: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.details = details

    def outcome(self, watch: Stopwatch, **details: Any) -> Outcome:
        outcome = Outcome.down(self.error, self.message, watch.total(), **details)
        outcome.details.update(self.details)
        outcome.phases = watch.finish()
        return outcome


class Stopwatch:
    """Times the phases of one check run in milliseconds and remembers the current one.

    >>> watch = Stopwatch()
    >>> with watch.phase("connect"):
    ...     pass
    >>> sorted(watch.finish())
    ['connect', 'total']
    """

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self.phases: dict[str, float] = {}
        self.current = "starting"
        self._stopped: float | None = None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.current = name
        started = time.perf_counter()
        yield
        self.phases[name] = _ms(started)

    def stop(self) -> None:
        """Freeze the total: what follows (closing politely) is not the target's time."""
        if self._stopped is None:
            self._stopped = time.perf_counter()

    def total(self) -> float:
        return _ms(self._started, self._stopped)

    def finish(self) -> dict[str, float]:
        """The phases measured so far plus ``total``, ready for an Outcome."""
        return {**self.phases, "total": self.total()}


def _ms(started: float, ended: float | None = None) -> float:
    return round(((ended or time.perf_counter()) - started) * 1000, 3)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve(host: str, port: int, family: Family, watch: Stopwatch,
                  policy: AddressPolicy | None = None) -> list[str]:
    """The addresses of ``host`` the policy lets us reach, in the order the system
    resolver prefers them. CheckFailure(BLOCKED) when the policy leaves none."""
    addresses = [host] if is_ip(host) else await _look_up(host, port, family, watch)
    if policy is None or policy.allow_private:
        return addresses
    allowed = [address for address in addresses if policy.refusal(address) is None]
    if addresses and not allowed:
        raise CheckFailure(ErrorCode.BLOCKED, f"refused to connect to {host}: "
                           f"{policy.refusal(addresses[0])}")
    return allowed


async def _look_up(host: str, port: int, family: Family, watch: Stopwatch) -> list[str]:
    loop = asyncio.get_running_loop()
    with watch.phase("dns"):
        try:
            infos = await loop.getaddrinfo(
                host, port, family=FAMILIES[family], type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise CheckFailure(ErrorCode.DNS, f"cannot resolve {host}: {reason}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_WAITING_FOR = {
    "dns": "resolving the host name",
    "connect": "connecting",
    "tls": "the TLS handshake",
    "first_byte": "waiting for an answer",
    "answer": "reading the answer",
}


def timeout_failure(watch: Stopwatch, seconds: float) -> CheckFailure:
    """The TIMEOUT failure for a run stopped by its time limit, naming what it waited on."""
    during = _WAITING_FOR.get(watch.current)
    where = f" while {during}" if during else ""
    return CheckFailure(ErrorCode.TIMEOUT, f"no result within {seconds:g}s{where}")


def describe_os_error(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


def connection_failure(error: OSError, where: str) -> CheckFailure:
    """Classify an error from connect(): refused, timed out or anything else."""
    if isinstance(error, ConnectionRefusedError):
        return CheckFailure(ErrorCode.CONNECTION_REFUSED, f"connection refused by {where}")
    if isinstance(error, TimeoutError):
        return CheckFailure(ErrorCode.TIMEOUT, f"connecting to {where} timed out")
    return CheckFailure(ErrorCode.CONNECTION, f"cannot connect to {where}: "
                        f"{describe_os_error(error)}")


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def connect(
    addresses: list[str], port: int, watch: Stopwatch
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the first address that accepts; the failure of the last one otherwise."""
    failure = CheckFailure(ErrorCode.DNS, "the host name has no addresses")
    with watch.phase("connect"):
        for address in addresses:
            try:
                return await asyncio.open_connection(address, port)
            except OSError as error:
                failure = connection_failure(error, host_port(address, port))
    raise failure


async def close_stream(writer: asyncio.StreamWriter, deadline: float | None = None) -> None:
    """Close a stream politely (TLS close_notify) but briefly, never past ``deadline``
    (loop time), and never leak the transport."""
    task = asyncio.current_task()
    wait = CLOSE_TIMEOUT
    if deadline is not None:
        wait = min(wait, deadline - asyncio.get_running_loop().time() - CLOSE_MARGIN)
    # A transport already closed (by a failed TLS upgrade, which detaches the stream's
    # protocol so wait_closed() would never return) or a run being cancelled: just drop it.
    if writer.transport.is_closing() or wait <= 0 or (task is not None and task.cancelling()):
        writer.transport.abort()
        await asyncio.sleep(0)  # let the transport's close callbacks run
        return
    writer.close()
    try:
        async with asyncio.timeout(wait):
            await writer.wait_closed()
    except (TimeoutError, OSError, ssl.SSLError):
        writer.transport.abort()
    except BaseException:
        writer.transport.abort()
        raise


T = TypeVar("T")


class ThreadBuiltCache:
    """Values that are costly or blocking to build (files, CA stores), built in a thread
    and kept for ``ttl`` seconds so edits on disk are still picked up.

    >>> cache = ThreadBuiltCache(ttl=60)
    >>> async def nameservers() -> list[str]:
    ...     return await cache.get("resolv.conf", lambda: ["127.0.0.1"])
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[object, tuple[float, Any]] = {}

    async def get(self, key: object, build: Callable[[], T]) -> T:
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and now - entry[0] < self.ttl:
            value: T = entry[1]
            return value
        value = await asyncio.to_thread(build)
        self._entries[key] = (now, value)
        return value

    def clear(self) -> None:
        self._entries.clear()


async def within(seconds: float, awaitable: Awaitable[T]) -> T:
    """Await with a time limit, so no single wait can outlive the check's budget."""
    async with asyncio.timeout(max(seconds, 0.0)):
        return await awaitable
