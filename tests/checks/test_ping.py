"""The ping check: real echo requests to loopback, and a fake pinger for the failures
loopback never shows (loss, slowness)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from typing import Any

import icmplib
import pydantic
import pytest

from dozor.checks import ping
from dozor.checks.base import CheckContext
from dozor.checks.ping import IcmpPinger, PingCheck, PingConfig, Reply
from dozor.core.types import ErrorCode, Outcome
from tests.servers.net_fixtures import *  # noqa: F403  (the fixtures)

LINUX_PING_GROUPS = ping.PING_GROUP_RANGE.exists()
needs_raw_sockets = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP needs root")


class FakePinger:
    """Answers from a script: an RTT in ms, None for silence, or a Reply."""

    def __init__(self, script: list[float | None | Reply]) -> None:
        self.script = list(script)
        self.closed = False

    async def echo(self, sequence: int, wait: float) -> Reply:
        step = self.script[sequence % len(self.script)]
        if isinstance(step, Reply):
            return step
        if step is None:
            await asyncio.sleep(wait)  # what a lost packet costs
            return Reply(None)
        return Reply(step)

    def close(self) -> None:
        self.closed = True


async def run(config: dict[str, Any], limit: float = 2.0, check: PingCheck | None = None
              ) -> Outcome:
    check = check or PingCheck()
    return await check.run(PingConfig.model_validate(config), CheckContext(timeout=limit))


@pytest.fixture
def fresh_privilege() -> Iterator[None]:
    """Forget what earlier tests learnt about raw sockets."""
    IcmpPinger._privileged_works = True
    yield
    IcmpPinger._privileged_works = True


@needs_raw_sockets
@pytest.mark.parametrize(("host", "phases"), [
    pytest.param("127.0.0.1", {"total"}, id="ipv4 loopback"),
    pytest.param("::1", {"total"}, id="ipv6 loopback"),
    pytest.param("localhost", {"dns", "total"}, id="a host name"),
])
async def test_loopback_answers_every_echo(host: str, phases: set[str]) -> None:
    outcome = await run({"host": host, "count": 3, "packet-interval": "10ms"})
    assert outcome.ok, outcome.message
    details = outcome.details
    assert (details["sent"], details["received"], details["loss"]) == (3, 3, 0.0)
    assert 0 < details["rtt_min"] <= details["rtt_avg"] <= details["rtt_max"]
    assert details["jitter"] >= 0
    assert outcome.latency_ms == details["rtt_avg"]
    assert set(outcome.phases) == phases


@needs_raw_sockets
async def test_loopback_is_too_slow_for_an_impossible_limit() -> None:
    outcome = await run({"host": "127.0.0.1", "count": 1, "max-average-rtt": 1e-9})
    assert outcome.error is ErrorCode.TOO_SLOW
    assert "more than the 1e-06 ms allowed" in (outcome.message or "")


SCRIPTED = [
    pytest.param([1.0, None, 2.0], {}, None, "", id="any reply is up by default"),
    pytest.param([1.0, None, 2.0], {"max-packet-loss": 40}, None, "", id="loss within limit"),
    pytest.param([1.0, None, None], {"max-packet-loss": 50}, ErrorCode.PACKET_LOSS,
                 "66.7% of packets to 127.0.0.1 were lost, more than the 50% allowed",
                 id="loss above the limit"),
    pytest.param([None], {}, ErrorCode.PACKET_LOSS,
                 "no reply from 127.0.0.1 to 3 echo requests", id="no reply at all"),
    pytest.param([Reply(None, "Destination port unreachable")], {"count": 1},
                 ErrorCode.PACKET_LOSS, "to 1 echo request (Destination port unreachable)",
                 id="an ICMP error instead of a reply"),
    pytest.param([10.0, 20.0, 30.0], {"max-average-rtt": "15ms"}, ErrorCode.TOO_SLOW,
                 "took 20 ms, more than the 15 ms allowed", id="too slow on average"),
    pytest.param([10.0, 20.0, 30.0], {"max-average-rtt": "25ms"}, None, "",
                 id="fast enough on average"),
]


@pytest.mark.parametrize(("script", "config", "error", "message"), SCRIPTED)
async def test_replies_are_judged(
    script: list[Any], config: dict[str, Any], error: ErrorCode | None, message: str
) -> None:
    pinger = FakePinger(script)
    check = PingCheck(open_pinger=lambda address: pinger)
    outcome = await run({"host": "127.0.0.1", "packet-interval": 0.01, "packet-timeout": 0.01,
                         **config}, check=check)
    assert outcome.error is error, outcome.message
    assert message in (outcome.message or "")
    assert pinger.closed


async def test_statistics_match_ping() -> None:
    check = PingCheck(open_pinger=lambda address: FakePinger([10.0, 30.0, None, 20.0]))
    outcome = await run({"host": "127.0.0.1", "count": 4, "packet-interval": 0.01,
                         "packet-timeout": 0.01}, check=check)
    assert outcome.details == {
        "address": "127.0.0.1", "sent": 4, "received": 3, "loss": 25.0,
        "rtt_min": 10.0, "rtt_avg": 20.0, "rtt_max": 30.0, "jitter": 15.0,
    }


async def test_silence_ends_at_the_time_limit() -> None:
    check = PingCheck(open_pinger=lambda address: FakePinger([None]))
    started = time.monotonic()
    outcome = await run({"host": "127.0.0.1", "packet-timeout": 5}, limit=0.3, check=check)
    assert time.monotonic() - started < 0.35
    assert outcome.error is ErrorCode.PACKET_LOSS
    assert outcome.details["sent"] == 1


async def test_the_time_limit_caps_the_number_of_requests() -> None:
    check = PingCheck(open_pinger=lambda address: FakePinger([1.0]))
    outcome = await run({"host": "127.0.0.1", "count": 10, "packet-interval": 0.1},
                        limit=0.25, check=check)
    assert outcome.ok
    assert outcome.details["sent"] == 3


async def test_an_unknown_host_is_a_dns_error(fake_names: dict[str, list[str]]) -> None:
    outcome = await run({"host": "nowhere.dozor.test"})
    assert outcome.error is ErrorCode.DNS
    assert "nowhere.dozor.test" in (outcome.message or "")


class RefusedSocket:
    """Stands for an ICMP socket class when the process may not open one."""

    def __init__(self, address: str | None = None, privileged: bool = True) -> None:
        raise icmplib.SocketPermissionError(privileged)


async def test_missing_permissions_are_explained(
    monkeypatch: pytest.MonkeyPatch, fresh_privilege: None
) -> None:
    monkeypatch.setattr(ping, "ICMPv4Socket", RefusedSocket)
    outcome = await run({"host": "127.0.0.1"})
    assert outcome.error is ErrorCode.CONFIGURATION
    message = outcome.message or ""
    assert message.startswith("ICMP sockets are not permitted: run Dozor as root or with "
                              "CAP_NET_RAW")
    if LINUX_PING_GROUPS:
        assert "net.ipv4.ping_group_range" in message


@needs_raw_sockets
async def test_unprivileged_sockets_are_tried_when_raw_ones_are_refused(
    monkeypatch: pytest.MonkeyPatch, fresh_privilege: None
) -> None:
    attempts: list[bool] = []

    def raw_refused(address: str | None = None, privileged: bool = True) -> Any:
        attempts.append(privileged)
        if privileged:
            raise icmplib.SocketPermissionError(privileged)
        return icmplib.ICMPv4Socket(privileged=True)  # stands in for a permitted one

    monkeypatch.setattr(ping, "ICMPv4Socket", raw_refused)
    for _ in range(2):
        outcome = await run({"host": "127.0.0.1", "count": 1})
        assert outcome.ok, outcome.message
    assert attempts == [True, False, False]  # raw sockets are not retried every run


INVALID = [
    pytest.param({}, "host", id="no host"),
    pytest.param({"host": "h", "count": 0}, "count", id="no requests"),
    pytest.param({"host": "h", "packet-interval": "soon"}, "packet-interval",
                 id="a word as interval"),
    pytest.param({"host": "h", "packet-timeout": 0}, "packet-timeout", id="zero wait"),
    pytest.param({"host": "h", "max-packet-loss": 100}, "max-packet-loss",
                 id="a loss limit that allows everything"),
    pytest.param({"host": "h", "max-average-rtt": "-1s"}, "max-average-rtt",
                 id="a negative rtt limit"),
    pytest.param({"host": "h", "ttl": 3}, "ttl", id="an unknown field"),
]


@pytest.mark.parametrize(("config", "field"), INVALID)
def test_invalid_config_names_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        PingConfig.model_validate(config)
    assert field in str(raised.value)


def test_durations_are_read_with_units() -> None:
    config = PingConfig.model_validate({"host": "h", "packet-interval": "250ms",
                                        "max-average-rtt": "0.1s"})
    assert (config.packet_interval, config.max_average_rtt) == (0.25, 0.1)
