"""The ``ping`` check: a host answers ICMP echo requests, with little loss and delay.

    kind: ping
    host: router.lan
    count: 5
    max-packet-loss: 20       # percent; by default any reply at all is up
    max-average-rtt: 50ms

Echo requests go out one at a time through icmplib's asyncio sockets. Raw sockets need
root or CAP_NET_RAW; without them the check falls back to unprivileged ICMP sockets,
which Linux allows only to groups in ``net.ipv4.ping_group_range``. When neither works
the check says so instead of failing obscurely.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from icmplib import (
    AsyncSocket,
    ICMPLibError,
    ICMPRequest,
    ICMPv4Socket,
    ICMPv6Socket,
    SocketPermissionError,
    TimeoutExceeded,
)
from icmplib.utils import unique_identifier
from pydantic import Field

from dozor.checks._net import CheckFailure, Family, Host, Seconds, Stopwatch, resolve
from dozor.checks.base import CheckConfig, CheckContext, register
from dozor.core.types import ErrorCode, Outcome

# Stop sending this long before the deadline, so the runner's hard limit never fires.
MARGIN = 0.02
PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")


class PingConfig(CheckConfig):
    """How many echo requests to send and what counts as healthy.

    >>> PingConfig.model_validate({"host": "10.0.0.1", "packet-interval": "200ms"}).packet_interval
    0.2
    """

    host: Host
    count: int = Field(default=3, ge=1, le=100)
    packet_interval: Seconds = Field(default=0.5, ge=0.01, le=60)  # between two requests
    packet_timeout: Seconds = Field(default=1.0, gt=0, le=60)  # wait for each reply
    max_packet_loss: float | None = Field(default=None, ge=0, lt=100)  # percent
    max_average_rtt: Seconds | None = Field(default=None, gt=0)
    family: Family = "any"

    def target_host(self) -> str | None:
        return self.host


@dataclass(frozen=True, slots=True)
class Reply:
    rtt_ms: float | None  # None: no reply in time
    problem: str | None = None  # what an ICMP error or a failed send said instead


class Pinger(Protocol):
    """Sends echo requests to one address; the seam where tests put a fake."""

    async def echo(self, sequence: int, wait: float) -> Reply: ...

    def close(self) -> None: ...


class IcmpPinger:
    """Echo requests over an icmplib socket, raw if allowed, else unprivileged."""

    _privileged_works = True  # learnt once per process: raw sockets were refused

    def __init__(self, address: str) -> None:
        self.address = address
        self.id = unique_identifier()
        self.socket = self._open(ICMPv6Socket if ":" in address else ICMPv4Socket)

    @classmethod
    def _open(cls, socket_class: type[Any]) -> AsyncSocket:
        for privileged in (True, False) if cls._privileged_works else (False,):
            try:
                opened = AsyncSocket(socket_class(privileged=privileged))
            except SocketPermissionError:
                continue
            cls._privileged_works = privileged
            return opened
        raise CheckFailure(ErrorCode.CONFIGURATION, no_permission_message())

    async def echo(self, sequence: int, wait: float) -> Reply:
        request = ICMPRequest(destination=self.address, id=self.id, sequence=sequence)
        try:
            self.socket.send(request)
            reply = await self.socket.receive(request, wait)
            reply.raise_for_status()
        except TimeoutExceeded:
            return Reply(None)
        except ICMPLibError as error:  # unreachable, TTL exceeded, send failed
            return Reply(None, str(error))
        return Reply((reply.time - request.time) * 1000)

    def close(self) -> None:
        self.socket.close()


def no_permission_message() -> str:
    advice = "ICMP sockets are not permitted: run Dozor as root or with CAP_NET_RAW"
    try:
        allowed = " ".join(PING_GROUP_RANGE.read_text().split())
    except OSError:
        return advice  # not Linux: no unprivileged ICMP to suggest
    return (f"{advice}, or let its group {os.getgid()} send pings with sysctl "
            f"net.ipv4.ping_group_range (now '{allowed}')")


@register
class PingCheck:
    kind: ClassVar[str] = "ping"
    Config: ClassVar[type[CheckConfig]] = PingConfig

    def __init__(self, open_pinger: Callable[[str], Pinger] = IcmpPinger) -> None:
        self.open_pinger = open_pinger

    async def run(self, config: PingConfig, ctx: CheckContext) -> Outcome:
        watch = Stopwatch()
        deadline = asyncio.get_running_loop().time() + ctx.timeout - MARGIN
        try:
            async with asyncio.timeout(ctx.timeout):  # backstop: the loop below stops first
                address = (await resolve(config.host, 0, config.family, watch,
                                         ctx.policy))[0]
                replies = await self._ping(address, config, deadline)
        except TimeoutError:
            return CheckFailure(ErrorCode.TIMEOUT, f"no result within {ctx.timeout:g}s "
                                "while resolving the host name").outcome(watch)
        except CheckFailure as failure:
            return failure.outcome(watch)
        return judge(config, address, replies, watch)

    async def _ping(self, address: str, config: PingConfig, deadline: float) -> list[Reply]:
        loop = asyncio.get_running_loop()
        pinger = self.open_pinger(address)
        replies: list[Reply] = []
        try:
            for sequence in range(config.count):
                sent_at = loop.time()
                if sent_at >= deadline:
                    break  # no time for another request: judge what came back
                wait = min(config.packet_timeout, deadline - sent_at)
                replies.append(await pinger.echo(sequence, wait))
                pause = sent_at + config.packet_interval - loop.time()
                if sequence + 1 < config.count and pause > 0:
                    await asyncio.sleep(min(pause, max(deadline - loop.time(), 0)))
        finally:
            pinger.close()
        return replies


def statistics_of(replies: list[Reply]) -> dict[str, Any]:
    """Counts and round-trip times in ms, like the summary line of ping(8)."""
    rtts = [reply.rtt_ms for reply in replies if reply.rtt_ms is not None]
    sent, received = len(replies), len(rtts)
    summary: dict[str, Any] = {
        "sent": sent, "received": received,
        "loss": round(100 * (sent - received) / sent, 1) if sent else 100.0,
        "rtt_min": None, "rtt_avg": None, "rtt_max": None, "jitter": None,
    }
    if rtts:
        # Jitter as in RFC 3550 spirit and icmplib: mean change between consecutive RTTs.
        changes = [abs(a - b) for a, b in zip(rtts, rtts[1:], strict=False)]
        summary.update(rtt_min=round(min(rtts), 3), rtt_avg=round(statistics.fmean(rtts), 3),
                       rtt_max=round(max(rtts), 3),
                       jitter=round(statistics.fmean(changes), 3) if changes else 0.0)
    return summary


def judge(config: PingConfig, address: str, replies: list[Reply], watch: Stopwatch) -> Outcome:
    summary = {"address": address, **statistics_of(replies)}
    failure = _failure(config, address, replies, summary)
    if failure is not None:
        outcome = failure.outcome(watch, **summary)
        outcome.latency_ms = summary["rtt_avg"]
        return outcome
    outcome = Outcome.up(summary["rtt_avg"], **summary)
    outcome.phases = watch.finish()
    return outcome


def _failure(
    config: PingConfig, address: str, replies: list[Reply], summary: dict[str, Any]
) -> CheckFailure | None:
    sent, loss, average = summary["sent"], summary["loss"], summary["rtt_avg"]
    if summary["received"] == 0:
        problems = {reply.problem for reply in replies if reply.problem}
        why = f" ({'; '.join(sorted(problems))})" if problems else ""
        return CheckFailure(ErrorCode.PACKET_LOSS,
                            f"no reply from {address} to {sent} echo request"
                            f"{'s' * (sent != 1)}{why}")
    if config.max_packet_loss is not None and loss > config.max_packet_loss:
        return CheckFailure(ErrorCode.PACKET_LOSS, f"{loss:g}% of packets to {address} were "
                            f"lost, more than the {config.max_packet_loss:g}% allowed")
    limit_ms = config.max_average_rtt * 1000 if config.max_average_rtt else None
    if limit_ms is not None and average > limit_ms:
        return CheckFailure(ErrorCode.TOO_SLOW, f"the average round trip to {address} took "
                            f"{average:g} ms, more than the {limit_ms:g} ms allowed")
    return None
