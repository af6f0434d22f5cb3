"""The SSRF guard, both ways: where private targets are denied, checks and users'
webhooks never connect to a non-public address (directly, through a name, after a
redirect, or when a name starts resolving somewhere else); where they are allowed,
the same targets work.

Every test host is on loopback, so a stand-in policy treats 127.0.0.2 as "the public
internet" and applies the real rules to everything else."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from dozor.checks import get_check
from dozor.checks.base import CheckContext, parse_config
from dozor.core.types import ErrorCode, Outcome
from dozor.notify.channels.base import ChannelContext, DeliveryError
from dozor.notify.channels.slack import SlackChannel, SlackConfig
from dozor.notify.channels.webhook import WebhookChannel, WebhookConfig
from dozor.outbound import AddressPolicy, Outbound
from dozor.settings import Settings
from tests.notify.channels.chat_support import make_message, point
from tests.servers.chat_webhooks import WebhookReceiver
from tests.servers.http import LocalHttpServer

PUBLIC_STAND_IN = "127.0.0.2"


class PublicStandIn(AddressPolicy):
    def refusal(self, address: str) -> str | None:
        return None if address == PUBLIC_STAND_IN else super().refusal(address)


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"),
    ("172.16.5.4", "private"), ("192.168.1.1", "private"), ("169.254.169.254", "link-local"),
    ("fe80::1%eth0", "link-local"), ("fd00:ec2::254", "private"), ("0.0.0.0", "private"),
    ("100.100.100.200", "non-public"), ("::ffff:127.0.0.1", "loopback"),
    ("64:ff9b::a00:1", "private"), ("2002:7f00:1::", "loopback"), ("224.0.0.1", "multicast"),
    ("not-an-ip", None),
])
def test_non_public_addresses_are_refused_and_named(address: str, kind: str | None) -> None:
    reason = AddressPolicy(allow_private=False).refusal(address)
    assert reason is not None
    assert reason == (f"{address} is a {kind} address" if kind else
                      f"{address} is not an IP address")
    assert AddressPolicy(allow_private=True).refusal(address) is None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert AddressPolicy(allow_private=False).refusal(address) is None


@pytest.mark.parametrize(("settings", "allowed"), [
    ({}, True), ({"signup": True}, False), ({"signup": True, "private_targets": "allow"}, True),
    ({"private_targets": "deny"}, False),
])
def test_private_targets_are_denied_by_default_only_where_strangers_sign_up(
        settings: dict[str, Any], allowed: bool) -> None:
    assert Settings.model_validate(settings).allows_private_targets is allowed


# --- checks -------------------------------------------------------------------------------

class Answers(AbstractResolver):
    """Answers with the addresses given, one list per lookup (the last one repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        addresses = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return [ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET,
                              proto=6, flags=0) for a in addresses]

    async def close(self) -> None:
        pass


@pytest.fixture
async def public_server() -> AsyncIterator[LocalHttpServer]:
    async with LocalHttpServer(host=PUBLIC_STAND_IN) as server:
        yield server


async def check(kind: str, config: dict[str, Any], allow: bool,
                resolver: AbstractResolver | None = None) -> Outcome:
    outbound = Outbound("dozor-test", resolver=resolver, policy=PublicStandIn(allow))
    try:
        return await get_check(kind).run(parse_config(kind, config),
                                         CheckContext(timeout=3, outbound=outbound))
    finally:
        await outbound.close()


async def test_an_http_check_of_a_private_address_is_refused_unless_allowed(
        public_server: LocalHttpServer) -> None:
    url = public_server.url("/status/200", host="127.0.0.1")  # it listens on .2 only
    denied = await check("http", {"url": url}, allow=False)
    assert (denied.ok, denied.error) == (False, ErrorCode.BLOCKED)
    assert denied.message == "refused to connect to 127.0.0.1: 127.0.0.1 is a loopback address"
    async with LocalHttpServer() as private:
        allowed = await check("http", {"url": private.url("/status/200")}, allow=True)
        assert allowed.ok, allowed.message
    assert (await check("http", {"url": public_server.url("/status/200")}, allow=False)).ok


async def test_a_redirect_into_the_private_network_is_refused(
        public_server: LocalHttpServer) -> None:
    async with LocalHttpServer() as private:
        url = public_server.serve("/out", status=302,
                                  headers={"Location": private.url("/status/200")})
        outcome = await check("http", {"url": url}, allow=False)
        assert outcome.error == ErrorCode.BLOCKED, outcome.message
        assert private.requests == []


async def test_a_name_that_starts_resolving_to_a_private_address_is_refused(
        public_server: LocalHttpServer) -> None:
    rebinding = Answers([PUBLIC_STAND_IN], ["127.0.0.1"])
    url = f"http://rebind.test:{public_server.port}/status/200"
    outbound = Outbound("dozor-test", resolver=rebinding, policy=PublicStandIn(False))
    http = get_check("http")
    config = parse_config("http", {"url": url})
    try:
        first = await http.run(config, CheckContext(timeout=3, outbound=outbound))
        second = await http.run(config, CheckContext(timeout=3, outbound=outbound))
    finally:
        await outbound.close()
    assert first.ok, first.message
    assert second.error == ErrorCode.BLOCKED and "127.0.0.1 is a loopback" in second.message
    assert len(public_server.requests) == 1


async def test_a_name_with_one_public_address_connects_only_to_that_one(
        public_server: LocalHttpServer) -> None:
    resolver = Answers(["127.0.0.1", PUBLIC_STAND_IN])
    url = f"http://mixed.test:{public_server.port}/status/200"
    outcome = await check("http", {"url": url}, allow=False, resolver=resolver)
    assert outcome.ok and outcome.details["ip"] == PUBLIC_STAND_IN


@pytest.mark.parametrize(("kind", "config"), [
    ("tcp", {"host": "127.0.0.1", "port": 9}),
    ("tls", {"host": "localhost", "port": 9}),
    ("dns", {"query-name": "example.test", "resolver": "127.0.0.1:53"}),
])
async def test_socket_checks_refuse_private_targets_too(kind: str,
                                                        config: dict[str, Any]) -> None:
    outcome = await check(kind, config, allow=False)
    assert outcome.error == ErrorCode.BLOCKED, outcome.message
    assert "is a loopback address" in (outcome.message or "")


async def test_a_tcp_check_of_a_private_address_works_where_allowed(
        public_server: LocalHttpServer) -> None:
    outcome = await check("tcp", {"host": "127.0.0.1", "port": public_server.port}, allow=True)
    assert outcome.error != ErrorCode.BLOCKED


# --- webhooks -----------------------------------------------------------------------------

@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as server:
        yield server


async def deliver(channel_kind: str, url: str, allow: bool,
                  resolver: AbstractResolver | None = None) -> Any:
    outbound = Outbound("dozor-test", resolver=resolver, policy=PublicStandIn(allow))
    context = ChannelContext(outbound=outbound, timeout=3)
    channel: Any = WebhookChannel(WebhookConfig(), context) if channel_kind == "webhook" \
        else SlackChannel(SlackConfig(), context)
    try:
        return await channel.send(make_message(), point(channel_kind, url))
    except DeliveryError as error:
        return error
    finally:
        await outbound.close()


@pytest.mark.parametrize("via", ["address", "name"])
async def test_a_users_webhook_into_the_private_network_fails_for_good(
        receiver: WebhookReceiver, via: str) -> None:
    url, resolver = receiver.url("/hook"), None
    if via == "name":
        url, resolver = url.replace("127.0.0.1", "hook.test"), Answers(["127.0.0.1"])
    failed = await deliver("webhook", url, allow=False, resolver=resolver)
    assert isinstance(failed, DeliveryError) and failed.permanent
    assert "127.0.0.1 is a loopback address" in str(failed)
    assert receiver.accepted == []
    assert not isinstance(await deliver("webhook", url, allow=True, resolver=resolver),
                          DeliveryError)
    assert len(receiver.accepted) == 1


async def test_a_slack_webhook_redirected_into_the_private_network_is_refused(
        public_server: LocalHttpServer, receiver: WebhookReceiver) -> None:
    url = public_server.serve("/services/x", status=307,
                              headers={"Location": receiver.url("/hook")})
    failed = await deliver("slack", url, allow=False)
    assert isinstance(failed, DeliveryError) and failed.permanent, failed
    assert receiver.accepted == [] and len(public_server.requests) == 1
    await asyncio.sleep(0)
