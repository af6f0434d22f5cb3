from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pydantic
import pytest

from dozor.notify.channels import build_channel, kinds_for_point
from dozor.notify.channels.base import (
    CallbackRequest,
    ChannelContext,
    ContactPoint,
    DeliveryError,
    DeliveryReport,
    InboundMessage,
    Message,
    OptOut,
)
from dozor.notify.channels.twilio import TwilioChannel, TwilioConfig
from dozor.outbound import Outbound
from tests.servers.smsfake import Answer, CallbackReceiver, single, unused_port
from tests.servers.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, error, signature

POINT = ContactPoint(id=3, kind="sms", address="+48600100200")
MESSAGE = Message(id=11, idempotency_key="msg-11", event="down", subject="Down",
                  text="DOWN: api.example.com (HTTP 503)")
SERVICE_SID = "MG" + "ab" * 16


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    client = Outbound(user_agent="dozor-test")
    yield client
    await client.close()


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as server:
        yield server


def channel_for(outbound: Outbound, api_base: str, *, timeout: float = 5.0,
                callback_url: str | None = None, **config: Any) -> TwilioChannel:
    settings = {"account-sid": ACCOUNT_SID, "auth-token": AUTH_TOKEN,
                "from-number": "+15005550006", "api-base": api_base, **config}
    context = ChannelContext(outbound, callback_url=callback_url, timeout=timeout)
    return TwilioChannel(TwilioConfig.model_validate(settings), context)


@dataclass
class Case:
    """One provider behaviour and what send() must make of it."""

    answers: tuple[Answer, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    callback_url: str | None = "https://dozor.example/cb/7"
    address: str = POINT.address
    text: str = MESSAGE.text
    receipt: dict[str, Any] | None = None  # Receipt fields to expect, or...
    error: dict[str, Any] | None = None  # ...DeliveryError fields to expect


def created(**resource: Any) -> Answer:
    body = {"sid": "SM" + "e" * 32, "status": "queued", "num_segments": "1", "price": None,
            **resource}
    return Answer(201, json.dumps(body), content_type="application/json")


CASES = {
    "an accepted message gives its sid and segments": Case(
        receipt={"provider_id": "SM" + "0" * 31 + "1", "parts": 1, "cost": None}),
    "without a callback URL a bare number expects no status callbacks": Case(
        callback_url=None, receipt={"tracked": False}),
    "a message through a messaging service is accepted": Case(
        config={"from-number": None, "messaging-service-sid": SERVICE_SID},
        callback_url=None, receipt={"parts": 1, "tracked": True}),
    "a long message is billed by its segments": Case(
        text="x" * 400, receipt={"parts": 3}),
    "a price, when Twilio gives one, is the cost": Case(
        answers=(created(price="-0.00750", num_segments="2"),),
        receipt={"provider_id": "SM" + "e" * 32, "parts": 2, "cost": Decimal("0.00750")}),
    "an invalid 'To' is permanent": Case(
        address="+1234", error={"permanent": True, "channel_fault": False,
                                "provider_code": "21211"}),
    "a recipient who replied STOP is permanent": Case(
        address="+48600999999", error={"permanent": True, "channel_fault": False,
                                       "provider_code": "21610"}),
    "wrong credentials are the channel's fault": Case(
        config={"auth-token": "wrong"},
        error={"permanent": False, "channel_fault": True, "provider_code": "20003"}),
    "a 'From' the account does not own is the channel's fault": Case(
        config={"from-number": "+15005550001"},
        error={"permanent": False, "channel_fault": True, "provider_code": "21606"}),
    "a region not enabled is the channel's fault": Case(
        answers=(error(400, 21408, "Permission to send an SMS has not been enabled"),),
        error={"permanent": False, "channel_fault": True, "provider_code": "21408"}),
    "an unknown 400 is the channel's fault": Case(
        answers=(error(400, 21999, "Something new"),),
        error={"permanent": False, "channel_fault": True, "provider_code": "21999"}),
    "a 429 is transient after its Retry-After": Case(
        answers=(error(429, 20429, "Too Many Requests", {"Retry-After": "3"}),),
        error={"permanent": False, "channel_fault": False, "retry_after": 3.0,
               "provider_code": "20429"}),
    "a 429 without a body is transient": Case(
        answers=(Answer(429, ""),),
        error={"permanent": False, "channel_fault": False, "retry_after": None,
               "provider_code": "429"}),
    "a full queue at the sender is transient": Case(
        answers=(error(400, 21611, "This 'From' number has exceeded the maximum number "
                                   "of queued messages"),),
        error={"permanent": False, "channel_fault": False, "provider_code": "21611"}),
    "a 500 with garbage is transient": Case(
        answers=(Answer(500, "\x00 oops"),),
        error={"permanent": False, "channel_fault": False, "provider_code": "500"}),
    "a 503 with Twilio's body is transient": Case(
        answers=(error(503, 20503, "Service Unavailable"),),
        error={"permanent": False, "channel_fault": False, "provider_code": "20503"}),
    "a 404 page is the channel's fault (a wrong api-base)": Case(
        answers=(Answer(404, "<html>Not Found</html>", content_type="text/html"),),
        error={"permanent": False, "channel_fault": True, "provider_code": "404"}),
    "a 201 with garbage counts as accepted, without an id": Case(
        answers=(Answer(201, "<html>created</html>"),),
        receipt={"provider_id": None, "parts": 1}),
    "an answer that never comes is transient": Case(
        answers=(Answer(delay=5.0),), error={"permanent": False, "channel_fault": False}),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_send_maps_each_answer_of_twilio(outbound: Outbound, twilio: FakeTwilio,
                                               case: Case) -> None:
    twilio.queue(*case.answers)
    twilio.unsubscribed.add("+48600999999")
    channel = channel_for(outbound, twilio.url(), timeout=0.3,
                          callback_url=case.callback_url, **case.config)
    message = Message(MESSAGE.id, MESSAGE.idempotency_key, "down", "Down", case.text)
    point = ContactPoint(POINT.id, "sms", case.address)
    if case.receipt is not None:
        receipt = await channel.send(message, point)
        assert {name: getattr(receipt, name) for name in case.receipt} == case.receipt
        return
    assert case.error is not None
    with pytest.raises(DeliveryError) as raised:
        await channel.send(message, point)
    assert {name: getattr(raised.value, name) for name in case.error} == case.error


async def test_a_refused_connection_is_transient(outbound: Outbound) -> None:
    channel = channel_for(outbound, f"http://127.0.0.1:{unused_port()}")
    with pytest.raises(DeliveryError) as raised:
        await channel.send(MESSAGE, POINT)
    assert raised.value.permanent is False and raised.value.channel_fault is False
    assert "refused" in raised.value.reason


async def test_an_unsubscribed_recipient_is_named_in_the_error(
        outbound: Outbound, twilio: FakeTwilio) -> None:
    twilio.unsubscribed.add(POINT.address)
    with pytest.raises(DeliveryError, match="replied STOP"):
        await channel_for(outbound, twilio.url()).send(MESSAGE, POINT)


async def test_the_request_carries_basic_auth_and_the_message_fields(
        outbound: Outbound, twilio: FakeTwilio) -> None:
    channel = channel_for(outbound, twilio.url(), callback_url="https://dozor.example/cb/7",
                          **{"messaging-service-sid": SERVICE_SID})
    await channel.send(MESSAGE, POINT)
    seen = single(twilio.requests)
    assert seen.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert seen.headers["Authorization"].startswith("Basic ")
    assert seen.form == {"To": "+48600100200", "Body": MESSAGE.text, "From": "+15005550006",
                         "MessagingServiceSid": SERVICE_SID,
                         "StatusCallback": "https://dozor.example/cb/7"}


async def test_a_status_callback_comes_back_as_delivery_reports(
        outbound: Outbound, twilio: FakeTwilio) -> None:
    receiver = CallbackReceiver(lambda request: channel.handle_callback(request))
    async with receiver:
        channel = channel_for(outbound, twilio.url(), callback_url=receiver.url("/cb/7"))
        receipt = await channel.send(MESSAGE, POINT)
        sid = twilio.sent[0].sid
        assert (await twilio.status(sid, "queued"))[0] == 200
        assert (await twilio.status(sid, "delivered"))[0] == 200
        assert (await twilio.status(sid, "undelivered", error_code="30003"))[0] == 200
    delivered, undelivered = receiver.events
    assert isinstance(delivered, DeliveryReport) and isinstance(undelivered, DeliveryReport)
    assert (delivered.provider_id, delivered.status) == (receipt.provider_id, "delivered")
    assert (undelivered.status, undelivered.detail) == ("failed", "undelivered (error 30003)")


async def test_an_inbound_sms_becomes_a_message_and_gets_empty_twiml(
        outbound: Outbound, twilio: FakeTwilio) -> None:
    receiver = CallbackReceiver(lambda request: channel.handle_callback(request))
    async with receiver:
        channel = channel_for(outbound, twilio.url(), callback_url=receiver.url("/cb/7"))
        status, body = await twilio.inbound(receiver.url("/cb/7"), "+48600100200", "Yes")
    assert status == 200 and body.endswith("<Response></Response>")
    message = single(receiver.events)
    assert isinstance(message, InboundMessage)
    assert (message.address, message.text) == ("+48600100200", "Yes")


async def test_a_stop_twilio_recognised_is_also_an_opt_out(
        outbound: Outbound, twilio: FakeTwilio) -> None:
    receiver = CallbackReceiver(lambda request: channel.handle_callback(request))
    async with receiver:
        channel = channel_for(outbound, twilio.url(), callback_url=receiver.url("/cb/7"))
        await twilio.inbound(receiver.url("/cb/7"), "+48600100200", "Arret",
                             opt_out_type="STOP")
    inbound, opt_out = receiver.events
    assert isinstance(inbound, InboundMessage) and inbound.text == "Arret"
    assert isinstance(opt_out, OptOut) and opt_out.address == "+48600100200"


async def test_a_forged_signature_is_refused_with_403(
        outbound: Outbound, twilio: FakeTwilio) -> None:
    receiver = CallbackReceiver(lambda request: channel.handle_callback(request))
    async with receiver:
        channel = channel_for(outbound, twilio.url(), callback_url=receiver.url("/cb/7"))
        await channel.send(MESSAGE, POINT)
        status, _ = await twilio.status(twilio.sent[0].sid, "delivered", token="not-it")
    assert status == 403 and receiver.events == []


def signed(url: str, params: dict[str, str], *, signed_url: str | None = None,
           token: str = AUTH_TOKEN) -> CallbackRequest:
    body = urlencode(params).encode()
    return CallbackRequest(
        method="POST", url=url, query={}, form=params, body=body,
        headers={"x-twilio-signature": signature(token, signed_url or url, params)})


STATUS = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered",
          "AccountSid": ACCOUNT_SID}


async def test_a_request_seen_behind_a_proxy_is_checked_against_the_callback_url(
        outbound: Outbound) -> None:
    channel = channel_for(outbound, "https://api.twilio.com",
                          callback_url="https://dozor.example/cb/7")
    reply = await channel.handle_callback(signed(
        "http://10.0.0.5:8000/cb/7", STATUS, signed_url="https://dozor.example/cb/7"))
    assert reply.status == 200 and len(reply.events) == 1


async def test_a_signature_over_the_url_with_its_default_port_is_accepted(
        outbound: Outbound) -> None:
    channel = channel_for(outbound, "https://api.twilio.com")
    reply = await channel.handle_callback(signed(
        "https://dozor.example/cb/7", STATUS, signed_url="https://dozor.example:443/cb/7"))
    assert reply.status == 200 and len(reply.events) == 1


REFUSED = {
    "no signature": CallbackRequest("POST", "https://dozor.example/cb/7", {}, STATUS,
                                    urlencode(STATUS).encode(), {}),
    "a signature for another URL": signed("https://dozor.example/cb/7", STATUS,
                                          signed_url="https://evil.example/cb/7"),
    "a signature with another token": signed("https://dozor.example/cb/7", STATUS,
                                             token="0" * 32),
    "a signature that is not ASCII": CallbackRequest(
        "POST", "https://dozor.example/cb/7", {}, STATUS, urlencode(STATUS).encode(),
        {"x-twilio-signature": "żółw"}),
}


@pytest.mark.parametrize("request_", REFUSED.values(), ids=REFUSED.keys())
async def test_an_unsigned_or_wrongly_signed_callback_gets_403(
        outbound: Outbound, request_: CallbackRequest) -> None:
    reply = await channel_for(outbound, "https://api.twilio.com").handle_callback(request_)
    assert reply.status == 403 and reply.events == ()


async def test_a_signed_request_twilio_would_never_send_gets_400(outbound: Outbound) -> None:
    reply = await channel_for(outbound, "https://api.twilio.com").handle_callback(
        signed("https://dozor.example/cb/7", {"Foo": "bar"}))
    assert reply.status == 400 and reply.events == ()


async def test_an_inbound_sms_from_a_short_code_is_acknowledged_without_events(
        outbound: Outbound) -> None:
    reply = await channel_for(outbound, "https://api.twilio.com").handle_callback(
        signed("https://dozor.example/cb/7", {"From": "22395", "Body": "Promo"}))
    assert (reply.status, reply.events) == (200, [])


def test_the_config_needs_a_sender_and_twilio_shaped_sids(outbound: Outbound) -> None:
    context = ChannelContext(outbound)
    channel = build_channel("twilio", {"account-sid": ACCOUNT_SID, "auth-token": "s3cret",
                                       "from-number": "+15005550006"}, context)
    assert isinstance(channel, TwilioChannel) and "s3cret" not in repr(channel.config)
    assert "twilio" in kinds_for_point("sms")
    with pytest.raises(pydantic.ValidationError, match="from-number or messaging-service"):
        build_channel("twilio", {"account-sid": ACCOUNT_SID, "auth-token": "x"}, context)
    with pytest.raises(pydantic.ValidationError, match="account-sid|account_sid"):
        build_channel("twilio", {"account-sid": "AB12", "auth-token": "x",
                                 "from-number": "+15005550006"}, context)

