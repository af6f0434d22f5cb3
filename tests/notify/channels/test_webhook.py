from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator

import pytest

from dozor.notify.channels import build_channel, kinds_for_point
from dozor.notify.channels.base import ChannelContext, Receipt
from dozor.notify.channels.webhook import (
    WebhookChannel,
    WebhookConfig,
    sign,
    signing_key,
    verify_signature,
)
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
from tests.servers.chat_webhooks import Reply, WebhookReceiver

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
ACCEPTED = Receipt(None, delivered=True)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(key=KEY) as server:
        yield server


@pytest.fixture
async def context() -> AsyncIterator[ChannelContext]:
    async with channel_context() as made:
        yield made


def channel(context: ChannelContext) -> WebhookChannel:
    return WebhookChannel(WebhookConfig(), context)


async def test_a_message_is_posted_signed_as_standard_webhooks_say(
    receiver: WebhookReceiver, context: ChannelContext,
) -> None:
    before = int(time.time())
    receipt = await channel(context).send(make_message(),
                                          point("webhook", receiver.url("/hook"), SECRET))
    assert receipt == ACCEPTED
    [request] = receiver.accepted  # the receiver checked the signature itself
    assert request.headers["webhook-id"] == request.headers["Idempotency-Key"] == "msg-7-3f2a9c"
    timestamp = int(request.headers["webhook-timestamp"])
    assert before <= timestamp <= time.time()
    assert request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert body.pop("sent_at") == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
    assert body == {
        "event": "down", "subject": "api.example.com is down",
        "text": "HTTP 503 from https://api.example.com/health (2 of 3 locations)",
        "link": "https://status.example.com/monitors/7", "language": "en",
        "message_id": 7, "idempotency_key": "msg-7-3f2a9c",
    }
    assert verify_signature(SECRET, dict(request.headers), request.body)


async def test_a_secret_not_in_whsec_form_is_the_key_itself(context: ChannelContext) -> None:
    async with WebhookReceiver(key=b"correct horse battery") as receiver:
        await channel(context).send(make_message(), point(
            "webhook", receiver.url("/hook"), "correct horse battery"))
        assert len(receiver.accepted) == 1


async def test_without_a_secret_nothing_is_signed(context: ChannelContext) -> None:
    async with WebhookReceiver() as receiver:
        await channel(context).send(make_message(), point("webhook", receiver.url("/hook")))
    [request] = receiver.accepted
    assert "webhook-signature" not in request.headers
    assert request.headers["webhook-id"] == "msg-7-3f2a9c"


async def test_a_retry_keeps_the_id_and_is_signed_afresh(
    receiver: WebhookReceiver, context: ChannelContext,
) -> None:
    receiver.script(Reply(503, headers={"Retry-After": "1"}))
    to = point("webhook", receiver.url("/hook"), SECRET)
    check(await attempt(channel(context), make_message(), to), Fails(False, "503", 1.0))
    assert await channel(context).send(make_message(), to) == ACCEPTED
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert receiver.signature_ok(first) and receiver.signature_ok(second)


async def test_a_wrong_secret_is_refused_by_the_receiver(
    receiver: WebhookReceiver, context: ChannelContext,
) -> None:
    outcome = await attempt(channel(context), make_message(),
                            point("webhook", receiver.url("/hook"), "whsec_d3Jvbmc="))
    check(outcome, Fails(True, "401", reason="HTTP 401"))
    assert receiver.accepted == []


async def test_a_redirect_is_not_followed(
    receiver: WebhookReceiver, context: ChannelContext,
) -> None:
    outcome = await attempt(channel(context), make_message(),
                            point("webhook", receiver.url("/moved"), SECRET))
    check(outcome, Fails(True, "301", reason="webhook URL redirects (HTTP 301)"))
    assert [request.path for request in receiver.requests] == ["/moved"]


async def test_a_secret_that_is_not_base64_fails_before_sending(
    receiver: WebhookReceiver, context: ChannelContext,
) -> None:
    outcome = await attempt(channel(context), make_message(),
                            point("webhook", receiver.url("/hook"), "whsec_not*base64"))
    check(outcome, Fails(True, reason="not base64"))
    assert receiver.requests == []


@pytest.mark.parametrize(("reply", "expected"), [
    pytest.param(None, ACCEPTED, id="204"),
    pytest.param(Reply(200, "<html>thanks</html>"), ACCEPTED, id="200-any-body"),
    pytest.param(Reply(202, json={"queued": True}), ACCEPTED, id="202"),
    pytest.param(Reply(410, "gone"), Fails(True, "410", reason="Gone"), id="410-gone"),
    pytest.param(Reply(404, "no such hook"), Fails(True, "404"), id="404"),
    pytest.param(Reply(400, "bad"), Fails(True, "400"), id="400"),
    pytest.param(Reply(408, headers={"Retry-After": "4"}), Fails(False, "408", 4.0),
                 id="408"),
    pytest.param(Reply(425), Fails(False, "425"), id="425-too-early"),
    pytest.param(Reply(429, headers={"Retry-After": "60"}), Fails(False, "429", 60.0),
                 id="429"),
    pytest.param(Reply(500, "<h1>crash</h1>"), Fails(False, "500"), id="500"),
    pytest.param(Reply(503, headers={"Retry-After": "soon"}), Fails(False, "503"),
                 id="503-unreadable-retry-after"),
    pytest.param(Reply(302, headers={"Location": "https://elsewhere.example/"}),
                 Fails(True, "302", reason="redirects"), id="302"),
    pytest.param(Reply(200, b"\xff" * 200_000), ACCEPTED, id="huge-garbage"),
    pytest.param(Reply(delay=5), Fails(False, reason="no answer within"), id="never-answers"),
])
async def test_webhook_answers_become_receipts_or_errors(
    receiver: WebhookReceiver, reply: Reply | None, expected: Receipt | Fails,
) -> None:
    if reply is not None:
        receiver.script(reply)
    async with channel_context(send_timeout=SHORT_TIMEOUT) as context:
        outcome = await attempt(channel(context), make_message(),
                                point("webhook", receiver.url("/hook"), SECRET))
    check(outcome, expected)


async def test_an_unreachable_webhook_is_a_transient_error(context: ChannelContext) -> None:
    outcome = await attempt(channel(context), make_message(),
                            point("webhook", refused_url("/hook"), SECRET))
    check(outcome, Fails(False, reason="connection refused"))


async def test_the_kind_is_registered_for_webhook_points(context: ChannelContext) -> None:
    assert "webhook" in kinds_for_point("webhook")
    assert isinstance(build_channel("webhook", {}, context), WebhookChannel)


# --- verify_signature, for receivers ------------------------------------------------

BODY = b'{"event":"down"}'
NOW = 1_700_000_000


def _headers(signature: str, timestamp: int = NOW, message_id: str = "msg-1") -> dict[str, str]:
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature}


GOOD = sign(SECRET, "msg-1", NOW, BODY)
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()


@pytest.mark.parametrize(("headers", "now", "valid"), [
    pytest.param(_headers(GOOD), NOW, True, id="good"),
    pytest.param(_headers(f"{sign(OLD_SECRET, 'msg-1', NOW, BODY)} {GOOD}"), NOW, True,
                 id="rotation-one-of-two"),
    pytest.param(_headers(sign(OLD_SECRET, "msg-1", NOW, BODY)), NOW, False, id="other-key"),
    pytest.param(_headers(GOOD.replace("v1,", "v1a,")), NOW, False, id="asymmetric-label"),
    pytest.param(_headers(GOOD, message_id="msg-2"), NOW, False, id="other-id"),
    pytest.param(_headers(GOOD, timestamp=NOW + 1), NOW, False, id="other-timestamp"),
    pytest.param(_headers(GOOD), NOW + 300, True, id="at-the-tolerance"),
    pytest.param(_headers(GOOD), NOW + 301, False, id="replayed-later"),
    pytest.param(_headers(GOOD), NOW - 301, False, id="from-the-future"),
    pytest.param(_headers("v1,not-base64!"), NOW, False, id="garbage-signature"),
    pytest.param({"webhook-id": "msg-1", "webhook-signature": GOOD}, NOW, False,
                 id="no-timestamp"),
    pytest.param({k.upper(): v for k, v in _headers(GOOD).items()}, NOW, True,
                 id="header-case"),
])
def test_verify_signature_accepts_only_fresh_untampered_requests(
    headers: dict[str, str], now: int, valid: bool,
) -> None:
    assert verify_signature(SECRET, headers, BODY, now=now) is valid


def test_signing_keys_follow_the_whsec_convention() -> None:
    assert signing_key(SECRET) == KEY
    assert signing_key("whsec_" + base64.b64encode(KEY).decode().rstrip("=")) == KEY
    with pytest.raises(ValueError, match="empty"):
        signing_key("whsec_")
