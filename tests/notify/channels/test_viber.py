from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from dozor.notify.channels import build_channel, kinds_for_point
from dozor.notify.channels.base import (
    ChannelContext,
    ContactPoint,
    DeliveryError,
    DeliveryReport,
    InboundMessage,
    OptOut,
)
from dozor.notify.channels.viber import ViberChannel
from dozor.outbound import Outbound
from tests.notify.channels.chat2_support import MESSAGE, Fails, closed_port
from tests.servers.viber import FakeViber

TOKEN = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"
USER = "01234567890A="
POINT = ContactPoint(id=3, kind="viber", address=USER)


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    client = Outbound(user_agent="dozor-test")
    yield client
    await client.close()


@pytest.fixture
async def viber() -> AsyncIterator[FakeViber]:
    async with FakeViber(token=TOKEN, subscribers={USER}) as server:
        yield server


def channel(outbound: Outbound, api_base: str, token: str = TOKEN, timeout: float = 5.0,
            callback_url: str | None = None, **more: str) -> ViberChannel:
    context = ChannelContext(outbound=outbound, timeout=timeout, callback_url=callback_url)
    config = {"auth-token": token, "sender-name": "Dozor", "api-base": api_base, **more}
    built = build_channel("viber", config, context)
    assert isinstance(built, ViberChannel)
    return built


async def test_a_sent_message_is_the_documented_request_and_its_token_the_receipt(
    viber: FakeViber, outbound: Outbound,
) -> None:
    receipt = await channel(outbound, viber.url("/pa")).send(MESSAGE, POINT)

    [request] = viber.requests
    assert (request.method, request.path) == ("POST", "/pa/send_message")
    assert request.headers["X-Viber-Auth-Token"] == TOKEN
    assert request.headers["User-Agent"] == "dozor-test"
    assert request.json == {
        "receiver": USER, "min_api_version": 1, "sender": {"name": "Dozor"}, "type": "text",
        "text": "Down: shop\nhttps://shop.example answered HTTP 503\n"
                "https://dozor.example/monitors/3",
    }
    [token] = viber.sent
    assert receipt.provider_id == str(token)
    assert receipt.tracked and not receipt.delivered


@pytest.mark.parametrize(("answer", "fails"), [
    pytest.param({"json": {"status": 5, "status_message": "receiverNotRegistered"}},
                 Fails(True, code="5", reason="not a registered Viber user"),
                 id="receiver not registered"),
    pytest.param({"json": {"status": 11, "status_message": "receiverNoSuitableDevice"}},
                 Fails(True, code="11"), id="receiver has no suitable device"),
    pytest.param({"json": {"status": 12, "status_message": "tooManyRequests"}},
                 Fails(False, code="12", reason="too many requests"), id="rate limited"),
    pytest.param({"json": {"status": 12}, "headers": {"Retry-After": "30"}},
                 Fails(False, retry_after=30.0, code="12"), id="rate limited with Retry-After"),
    pytest.param({"json": {"status": 7, "status_message": "publicAccountBlocked"}},
                 Fails(True, channel_fault=True, code="7"), id="bot blocked"),
    pytest.param({"json": {"status": 24, "status_message": "noBalance"}},
                 Fails(True, channel_fault=True, code="24", reason="no balance"),
                 id="no balance"),
    pytest.param({"json": {"status": 99, "status_message": "generalError"}},
                 Fails(False, code="99", reason="generalError"), id="general error"),
    pytest.param({"status": 500, "body": "oops"},
                 Fails(False, code="500", reason="HTTP 500"), id="HTTP 500"),
    pytest.param({"status": 429, "body": "slow down", "headers": {"Retry-After": "7"}},
                 Fails(False, retry_after=7.0, code="429"), id="HTTP 429 with Retry-After"),
    pytest.param({"status": 403, "body": "forbidden"},
                 Fails(True, channel_fault=True, code="403"), id="HTTP 403"),
    pytest.param({"status": 404, "body": "no such path"},
                 Fails(True, channel_fault=True, code="404"), id="HTTP 404: wrong api-base"),
    pytest.param({"body": "<html>maintenance</html>"},
                 Fails(False, reason="not the JSON it documents"), id="garbage body"),
    pytest.param({"json": {"ok": True}},
                 Fails(False, reason="not the JSON it documents"), id="JSON without status"),
    pytest.param({"delay": 3.0}, Fails(False, reason="did not answer within 0.3 s"),
                 id="no answer in time"),
])
async def test_each_answer_of_viber_becomes_the_right_delivery_error(
    viber: FakeViber, outbound: Outbound, answer: dict[str, Any], fails: Fails,
) -> None:
    viber.answer_next(**answer)
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, viber.url("/pa"), timeout=0.3).send(MESSAGE, POINT)
    fails.check(caught.value)


async def test_a_wrong_token_is_the_channels_fault(viber: FakeViber, outbound: Outbound) -> None:
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, viber.url("/pa"), token="stale").send(MESSAGE, POINT)
    Fails(True, channel_fault=True, code="2", reason="invalid auth token").check(caught.value)
    assert "stale" not in caught.value.reason


async def test_a_user_who_is_not_subscribed_is_the_recipients_fault(
    viber: FakeViber, outbound: Outbound,
) -> None:
    stranger = ContactPoint(id=4, kind="viber", address="ZZZZ0000abcd=")
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, viber.url("/pa")).send(MESSAGE, stranger)
    Fails(True, code="6", reason="not subscribed").check(caught.value)


async def test_sending_before_a_webhook_is_set_is_the_channels_fault(
    outbound: Outbound,
) -> None:
    async with FakeViber(token=TOKEN, subscribers={USER}, webhook=None) as viber:
        with pytest.raises(DeliveryError) as caught:
            await channel(outbound, viber.url("/pa")).send(MESSAGE, POINT)
    Fails(True, channel_fault=True, code="10").check(caught.value)


async def test_a_refused_connection_is_transient(outbound: Outbound) -> None:
    api_base = f"http://127.0.0.1:{closed_port()}/pa"
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, api_base).send(MESSAGE, POINT)
    Fails(False, reason="Viber unreachable: connection refused").check(caught.value)


async def test_set_webhook_registers_the_callback_url_for_the_events_we_use(
    outbound: Outbound,
) -> None:
    async with FakeViber(token=TOKEN, webhook=None) as viber:
        url = "https://dozor.example/notify/callback/9"
        await channel(outbound, viber.url("/pa"), callback_url=url).set_webhook()
        assert viber.webhook == url
        body = viber.requests[-1].json
    assert body["event_types"] == ["delivered", "failed", "subscribed", "unsubscribed",
                                   "conversation_started"]


async def test_set_webhook_without_a_callback_url_is_a_channel_fault(
    viber: FakeViber, outbound: Outbound,
) -> None:
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, viber.url("/pa")).set_webhook()
    assert caught.value.channel_fault
    assert viber.requests == []


AT = datetime(2016, 3, 12, 6, 29, 57, 627000, tzinfo=UTC)
STAMP = 1457764197627


@pytest.mark.parametrize(("event", "expected"), [
    pytest.param({"event": "delivered", "timestamp": STAMP, "message_token": 4912661846655238145,
                  "user_id": USER},
                 [DeliveryReport("4912661846655238145", "delivered", AT)], id="delivered"),
    pytest.param({"event": "failed", "timestamp": STAMP, "message_token": 491266184665523145,
                  "user_id": USER, "desc": "failure description"},
                 [DeliveryReport("491266184665523145", "failed", AT, "failure description")],
                 id="failed"),
    pytest.param({"event": "unsubscribed", "timestamp": STAMP, "user_id": USER},
                 [OptOut("viber", USER, AT, "unsubscribed from the Viber bot")],
                 id="unsubscribed"),
    pytest.param({"event": "message", "timestamp": STAMP, "message_token": 1,
                  "sender": {"id": USER, "name": "Ann"},
                  "message": {"type": "text", "text": " 482913 "}},
                 [InboundMessage("viber", USER, "482913", AT)], id="a text"),
    pytest.param({"event": "message", "timestamp": STAMP, "sender": {"id": USER},
                  "message": {"type": "picture", "media": "https://x/y.jpg"}},
                 [], id="a picture"),
    pytest.param({"event": "conversation_started", "timestamp": STAMP, "type": "open",
                  "context": "CONFIRM-482913", "user": {"id": USER}, "subscribed": False},
                 [InboundMessage("viber", USER, "CONFIRM-482913", AT)],
                 id="conversation started from a deep link"),
    pytest.param({"event": "conversation_started", "timestamp": STAMP, "type": "open",
                  "user": {"id": USER}, "subscribed": False},
                 [], id="conversation started without context"),
    pytest.param({"event": "subscribed", "timestamp": STAMP, "user": {"id": USER}},
                 [], id="subscribed"),
    pytest.param({"event": "seen", "timestamp": STAMP, "message_token": 1, "user_id": USER},
                 [], id="seen"),
    pytest.param({"event": "webhook", "timestamp": STAMP, "message_token": 1},
                 [], id="webhook check"),
    pytest.param({"event": "unsubscribed", "timestamp": STAMP, "user_id": "no!"},
                 [], id="a user id that is not one"),
])
async def test_viber_callbacks_become_events(
    viber: FakeViber, outbound: Outbound, event: dict[str, Any], expected: list[Any],
) -> None:
    reply = await channel(outbound, viber.url("/pa")).handle_callback(viber.callback(event))
    assert (reply.status, list(reply.events)) == (200, expected)


async def test_an_opened_conversation_is_answered_with_the_welcome_text_when_set(
    viber: FakeViber, outbound: Outbound,
) -> None:
    event = {"event": "conversation_started", "timestamp": STAMP, "type": "open",
             "context": "CONFIRM-482913", "user": {"id": USER}, "subscribed": False}
    welcoming = channel(outbound, viber.url("/pa"), **{"welcome-text": "Reply to subscribe"})
    reply = await welcoming.handle_callback(viber.callback(event))
    assert reply.content_type == "application/json"
    assert json.loads(reply.body) == {"sender": {"name": "Dozor"}, "type": "text",
                                      "text": "Reply to subscribe"}
    assert list(reply.events) == [InboundMessage("viber", USER, "CONFIRM-482913", AT)]
    other = {"event": "delivered", "timestamp": STAMP, "message_token": 1, "user_id": USER}
    assert (await welcoming.handle_callback(viber.callback(other))).body == "OK"


async def test_a_callback_with_a_bad_or_missing_signature_is_refused(
    viber: FakeViber, outbound: Outbound,
) -> None:
    event = {"event": "unsubscribed", "timestamp": STAMP, "user_id": USER}
    forged = viber.callback(event, key="not-the-token")
    unsigned = replace(viber.callback(event), headers={})
    for request in (forged, unsigned):
        reply = await channel(outbound, viber.url("/pa")).handle_callback(request)
        assert (reply.status, list(reply.events)) == (403, [])


@pytest.mark.parametrize("request_", [
    pytest.param(lambda v: v.callback(b"[1, 2"), id="signed, not JSON"),
    pytest.param(lambda v: v.callback(b"[1, 2]"), id="signed, not an object"),
    pytest.param(lambda v: replace(v.callback({}), method="GET"), id="a GET"),
])
async def test_a_signed_callback_that_is_not_a_json_object_is_refused(
    viber: FakeViber, outbound: Outbound, request_: Any,
) -> None:
    reply = await channel(outbound, viber.url("/pa")).handle_callback(request_(viber))
    assert reply.status in (400, 405)
    assert list(reply.events) == []


def test_the_config_takes_kebab_case_and_refuses_a_long_sender_name() -> None:
    assert "viber" in kinds_for_point("viber")
    with pytest.raises(ValidationError, match="sender-name|sender_name"):
        build_channel("viber", {"auth-token": TOKEN, "sender-name": "x" * 29},
                      ChannelContext(outbound=Outbound("t")))
    with pytest.raises(ValidationError, match="auth-token|auth_token"):
        build_channel("viber", {"sender-name": "Dozor"}, ChannelContext(outbound=Outbound("t")))
