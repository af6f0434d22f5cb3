from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dozor.notify.channels import build_channel, kinds_for_point
from dozor.notify.channels.base import ChannelContext, Receipt
from dozor.notify.channels.discord import DiscordChannel, DiscordConfig
from tests.notify.channels.chat_support import (
    SHORT_TIMEOUT,
    Fails,
    attempt,
    channel_context,
    check,
    make_message,
    point,
    refused_url,
)
from tests.servers.chat_webhooks import DiscordWebhooks, Reply, discord_rate_limited

FIRST_MESSAGE_ID = "1190000000000000002"  # the fake's snowflake after the webhook's own


@pytest.fixture
async def discord() -> AsyncIterator[DiscordWebhooks]:
    async with DiscordWebhooks() as server:
        yield server


@pytest.fixture
async def context() -> AsyncIterator[ChannelContext]:
    async with channel_context() as made:
        yield made


async def test_a_message_is_posted_and_waited_for_so_its_id_comes_back(
    discord: DiscordWebhooks, context: ChannelContext,
) -> None:
    url = discord.add_hook()
    receipt = await DiscordChannel(DiscordConfig(), context).send(make_message(),
                                                                  point("discord", url))
    assert receipt == Receipt(provider_id=FIRST_MESSAGE_ID, delivered=True)
    [request] = discord.requests
    assert request.query == {"wait": "true"}
    assert request.json() == {
        "content": "api.example.com is down",
        "allowed_mentions": {"parse": []},
        "embeds": [{"description": "HTTP 503 from https://api.example.com/health "
                                   "(2 of 3 locations)\nhttps://status.example.com/monitors/7",
                    "color": 0xE74C3C}],
    }


async def test_a_thread_in_the_webhook_url_is_kept(
    discord: DiscordWebhooks, context: ChannelContext,
) -> None:
    url = discord.add_hook() + "?thread_id=1234567890"
    await DiscordChannel(DiscordConfig(), context).send(make_message(), point("discord", url))
    assert discord.requests[0].query == {"thread_id": "1234567890", "wait": "true"}


async def test_markdown_is_escaped_and_nobody_is_pinged(
    discord: DiscordWebhooks, context: ChannelContext,
) -> None:
    message = make_message(event="up", subject="@everyone db_main *up*",
                           text="`select 1` took 3 ms", link=None)
    await DiscordChannel(DiscordConfig(), context).send(message,
                                                        point("discord", discord.add_hook()))
    body = discord.posted[0]
    assert body["content"] == "@everyone db\\_main \\*up\\*"
    assert body["allowed_mentions"] == {"parse": []}
    assert body["embeds"] == [{"description": "\\`select 1\\` took 3 ms", "color": 0x2ECC71}]


async def test_long_texts_are_cut_to_discords_limits(
    discord: DiscordWebhooks, context: ChannelContext,
) -> None:
    message = make_message(subject="s" * 2500, text="t_" * 3000)
    receipt = await DiscordChannel(DiscordConfig(), context).send(
        message, point("discord", discord.add_hook()))
    assert receipt.provider_id is not None
    body = discord.posted[0]
    assert len(body["content"]) == 2000 and body["content"].endswith("…")
    assert len(body["embeds"][0]["description"]) <= 4096


@pytest.mark.parametrize(("fault", "reply", "expected"), [
    pytest.param(None, None, Receipt(FIRST_MESSAGE_ID, delivered=True), id="sent"),
    pytest.param("deleted", None, Fails(True, "10015", reason="HTTP 404: Unknown Webhook"),
                 id="unknown-webhook"),
    pytest.param("wrong-token", None,
                 Fails(True, "50027", reason="HTTP 401: Invalid Webhook Token"),
                 id="invalid-token"),
    pytest.param(None, discord_rate_limited(1.5), Fails(False, "429", 1.5,
                                                        reason="rate limited"),
                 id="rate-limited"),
    pytest.param(None, Reply(429, "<html>error code: 1015</html>", content_type="text/html",
                             headers={"Retry-After": "30"}),
                 Fails(False, "429", 30.0), id="cloudflare-1015"),
    pytest.param(None, Reply(400, json={"message": "Invalid Form Body", "code": 50035}),
                 Fails(True, "50035", channel_fault=True), id="invalid-form-body"),
    pytest.param(None, Reply(403, json={"message": "Missing Access", "code": 50001}),
                 Fails(True, "50001"), id="missing-access"),
    pytest.param(None, Reply(500, json={"message": "500: Internal Server Error", "code": 0}),
                 Fails(False, "0"), id="500"),
    pytest.param(None, Reply(502, "<html>bad gateway</html>", content_type="text/html"),
                 Fails(False, "502", reason="HTTP 502"), id="502-html"),
    pytest.param(None, Reply(200, "not json at all"), Receipt(None, delivered=True),
                 id="200-garbage-is-still-saved"),
    pytest.param(None, Reply(204), Receipt(None, delivered=True), id="204-without-wait"),
    pytest.param(None, Reply(delay=5), Fails(False, reason="no answer within"),
                 id="never-answers"),
])
async def test_discord_answers_become_receipts_or_errors(
    discord: DiscordWebhooks, fault: str | None, reply: Reply | None,
    expected: Receipt | Fails,
) -> None:
    url = discord.add_hook()
    if fault == "deleted":
        discord.hooks.clear()
    if fault == "wrong-token":
        url = url[: url.rindex("/")] + "/guessed-token"
    if reply is not None:
        discord.script(reply)
    async with channel_context(send_timeout=SHORT_TIMEOUT) as context:
        outcome = await attempt(DiscordChannel(DiscordConfig(), context), make_message(),
                                point("discord", url))
    check(outcome, expected)


async def test_discord_out_of_reach_is_a_transient_error(context: ChannelContext) -> None:
    outcome = await attempt(DiscordChannel(DiscordConfig(), context), make_message(),
                            point("discord", refused_url("/api/webhooks/1/x")))
    check(outcome, Fails(False, reason="connection refused"))


async def test_the_kind_is_registered_for_discord_points(context: ChannelContext) -> None:
    assert "discord" in kinds_for_point("discord")
    assert isinstance(build_channel("discord", {}, context), DiscordChannel)
