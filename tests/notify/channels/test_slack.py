from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dozor.notify.channels import build_channel, kinds_for_point
from dozor.notify.channels.base import ChannelContext, Receipt
from dozor.notify.channels.slack import SlackChannel, SlackConfig
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
from tests.servers.chat_webhooks import Reply, SlackWebhooks, slack_rate_limited


@pytest.fixture
async def slack() -> AsyncIterator[SlackWebhooks]:
    async with SlackWebhooks() as server:
        yield server


@pytest.fixture
async def context() -> AsyncIterator[ChannelContext]:
    async with channel_context() as made:
        yield made


async def test_a_message_is_posted_as_text_and_blocks(
    slack: SlackWebhooks, context: ChannelContext,
) -> None:
    url = slack.add_hook()
    receipt = await SlackChannel(SlackConfig(), context).send(make_message(), point("slack", url))
    assert receipt == Receipt(provider_id=None, delivered=True)
    [request] = slack.requests
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {
        "text": "api.example.com is down\n"
                "HTTP 503 from https://api.example.com/health (2 of 3 locations)",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "api.example.com is down",
                                        "emoji": True}},
            {"type": "section", "text": {
                "type": "mrkdwn",
                "text": "HTTP 503 from https://api.example.com/health (2 of 3 locations)\n"
                        "<https://status.example.com/monitors/7>"}},
        ],
    }


async def test_mrkdwn_characters_are_escaped_and_long_parts_cut_to_slacks_limits(
    slack: SlackWebhooks, context: ChannelContext,
) -> None:
    message = make_message(subject="S" * 200, text="<!channel> & " * 400,
                           link="https://x.example/?a=1&b=2|3")
    await SlackChannel(SlackConfig(), context).send(message, point("slack", slack.add_hook()))
    header, section = slack.posted[0]["blocks"]
    assert header["text"]["text"] == "S" * 149 + "…"
    body = section["text"]["text"]
    assert len(body) <= 3000 and "<!channel>" not in body
    assert body.startswith("&lt;!channel&gt; &amp; &lt;!channel&gt;")
    assert body.endswith("…\n<https://x.example/?a=1&amp;b=2%7C3>")


@pytest.mark.parametrize(("state", "reply", "expected"), [
    pytest.param("active", None, Receipt(None, delivered=True), id="ok"),
    pytest.param("revoked", None, Fails(True, "invalid_token", reason="HTTP 403: invalid_token"),
                 id="revoked"),
    pytest.param("prohibited", None, Fails(True, "action_prohibited"), id="prohibited"),
    pytest.param("channel_deleted", None, Fails(True, "channel_not_found"),
                 id="channel-deleted"),
    pytest.param("archived", None, Fails(True, "channel_is_archived", reason="HTTP 410"),
                 id="archived"),
    pytest.param(None, None, Fails(True, "no_service", reason="HTTP 404: no_service"),
                 id="hook-removed"),
    pytest.param("active", Reply(400, "invalid_payload"),
                 Fails(True, "invalid_payload", channel_fault=True), id="our-payload"),
    pytest.param("active", Reply(400, "user_not_found"), Fails(True, "user_not_found"),
                 id="user-not-found"),
    pytest.param("active", slack_rate_limited(3), Fails(False, "rate_limited", 3.0),
                 id="rate-limited"),
    pytest.param("active", Reply(500, "rollup_error"), Fails(False, "rollup_error"),
                 id="rollup-error"),
    pytest.param("active", Reply(503, "<html>down</html>", content_type="text/html",
                                 headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
                 Fails(False, "503", 0.0), id="503-date-in-the-past"),
    pytest.param("active", Reply(200, "<html>captive portal</html>"),
                 Fails(False, reason="without 'ok'"), id="200-garbage"),
    pytest.param("active", Reply(delay=5), Fails(False, reason="no answer within"),
                 id="never-answers"),
])
async def test_slack_answers_become_receipts_or_errors(
    slack: SlackWebhooks, state: str | None, reply: Reply | None, expected: Receipt | Fails,
) -> None:
    url = slack.add_hook(state or "active")
    if state is None:
        slack.hooks.clear()
    if reply is not None:
        slack.script(reply)
    async with channel_context(send_timeout=SHORT_TIMEOUT) as context:
        outcome = await attempt(SlackChannel(SlackConfig(), context), make_message(),
                                point("slack", url))
    check(outcome, expected)


async def test_slack_out_of_reach_is_a_transient_error(context: ChannelContext) -> None:
    outcome = await attempt(SlackChannel(SlackConfig(), context), make_message(),
                            point("slack", refused_url("/services/T1/B1/x")))
    check(outcome, Fails(False, reason="connection refused"))


async def test_the_kind_is_registered_for_slack_points(context: ChannelContext) -> None:
    assert "slack" in kinds_for_point("slack")
    assert isinstance(build_channel("slack", {}, context), SlackChannel)
