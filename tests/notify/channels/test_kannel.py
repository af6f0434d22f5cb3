from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

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
)
from dozor.notify.channels.kannel import KannelChannel, KannelConfig, sms_service_get_url
from dozor.outbound import Outbound
from tests.servers.kannel import FakeKannel
from tests.servers.smsfake import Answer, CallbackReceiver, single, unused_port

POINT = ContactPoint(id=3, kind="sms", address="+48600100200")
MESSAGE = Message(id=11, idempotency_key="msg-11", event="down", subject="Down",
                  text="DOWN: api.example.com (HTTP 503)")


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    client = Outbound(user_agent="dozor-test")
    yield client
    await client.close()


@pytest.fixture
async def kannel() -> AsyncIterator[FakeKannel]:
    async with FakeKannel(users={"dozor": "s3cret"}) as server:
        yield server


def channel_for(outbound: Outbound, sendsms_url: str, *, timeout: float = 5.0,
                callback_url: str | None = "https://dozor.example/cb/7",
                **config: Any) -> KannelChannel:
    settings = {"sendsms-url": sendsms_url, "username": "dozor", "password": "s3cret",
                "sender": "Dozor", **config}
    context = ChannelContext(outbound, callback_url=callback_url, timeout=timeout)
    return KannelChannel(KannelConfig.model_validate(settings), context)


@dataclass
class Case:
    """One smsbox behaviour and what send() must make of it."""

    answers: tuple[Answer, ...] = ()
    setup: dict[str, Any] = field(default_factory=dict)  # routable=..., blocked=...
    config: dict[str, Any] = field(default_factory=dict)
    receipt: dict[str, Any] | None = None  # Receipt fields to expect, or...
    error: dict[str, Any] | None = None  # ...DeliveryError fields to expect


CASES = {
    "an accepted message has our id as its provider id": Case(
        receipt={"provider_id": "msg-11", "parts": 1, "tracked": True}),
    "a message queued for later delivery is accepted": Case(
        setup={"queueing": True}, receipt={"provider_id": "msg-11"}),
    "an immediate reply's message splits are the parts": Case(
        answers=(Answer(202, "Sent. Message splits: 2"),), receipt={"parts": 2}),
    "a wrong password is the channel's fault": Case(
        config={"password": "wrong"},
        error={"permanent": False, "channel_fault": True, "provider_code": "403"}),
    "a black-listed number is permanent": Case(
        setup={"blocked": {"+48600100200"}},
        error={"permanent": True, "channel_fault": False, "provider_code": "400"}),
    "a missing receiver is permanent": Case(
        answers=(Answer(400, "Missing receiver number, rejected"),),
        error={"permanent": True, "channel_fault": False, "provider_code": "400"}),
    "no sender anywhere is the channel's fault": Case(
        config={"sender": None},
        error={"permanent": False, "channel_fault": True, "provider_code": "400"}),
    "a number no SMSC routes is the channel's fault": Case(
        setup={"routable": False},
        error={"permanent": False, "channel_fault": True, "provider_code": "403"}),
    "a temporal failure is transient": Case(
        answers=(Answer(503, "Temporal failure, try again later."),),
        error={"permanent": False, "channel_fault": False, "provider_code": "503"}),
    "a failed send is transient": Case(
        answers=(Answer(500, "Sending failed."),),
        error={"permanent": False, "channel_fault": False, "provider_code": "500"}),
    "a 500 with garbage is transient": Case(
        answers=(Answer(500, "\x00\xff"),),
        error={"permanent": False, "channel_fault": False, "provider_code": "500"}),
    "a 404 (a wrong sendsms-url) is the channel's fault": Case(
        answers=(Answer(404, "Unknown service"),),
        error={"permanent": False, "channel_fault": True, "provider_code": "404"}),
    "an answer that never comes is transient": Case(
        answers=(Answer(delay=5.0),), error={"permanent": False, "channel_fault": False}),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_send_maps_each_answer_of_kannel(outbound: Outbound, kannel: FakeKannel,
                                               case: Case) -> None:
    kannel.queue(*case.answers)
    for name, value in case.setup.items():
        setattr(kannel, name, value)
    channel = channel_for(outbound, kannel.url("/cgi-bin/sendsms"), timeout=0.3, **case.config)
    if case.receipt is not None:
        receipt = await channel.send(MESSAGE, POINT)
        assert {name: getattr(receipt, name) for name in case.receipt} == case.receipt
        return
    assert case.error is not None
    with pytest.raises(DeliveryError) as raised:
        await channel.send(MESSAGE, POINT)
    assert {name: getattr(raised.value, name) for name in case.error} == case.error


async def test_a_refused_connection_is_transient(outbound: Outbound) -> None:
    channel = channel_for(outbound, f"http://127.0.0.1:{unused_port()}/cgi-bin/sendsms")
    with pytest.raises(DeliveryError) as raised:
        await channel.send(MESSAGE, POINT)
    assert raised.value.permanent is False and raised.value.channel_fault is False
    assert "refused" in raised.value.reason


async def test_the_request_carries_credentials_text_and_a_dlr_url_with_our_id(
        outbound: Outbound, kannel: FakeKannel) -> None:
    await channel_for(outbound, kannel.url("/cgi-bin/sendsms")).send(MESSAGE, POINT)
    assert single(kannel.requests).query == {
        "username": "dozor", "password": "s3cret", "to": "+48600100200",
        "text": MESSAGE.text, "from": "Dozor", "charset": "UTF-8", "coding": "0",
        "dlr-mask": "27",
        "dlr-url": "https://dozor.example/cb/7?id=msg-11&type=%d&reply=%A&at=%T"}


async def test_a_text_outside_the_gsm_alphabet_goes_as_ucs2(
        outbound: Outbound, kannel: FakeKannel) -> None:
    text = "Serwer nie działa: " + "ż" * 60
    receipt = await channel_for(outbound, kannel.url("/cgi-bin/sendsms")).send(
        Message(12, "msg-12", "down", "Down", text), POINT)
    sent = single(kannel.sent)
    assert (sent.coding, sent.charset, sent.text) == (2, "UTF-8", text)
    assert receipt.parts == 2


@pytest.mark.parametrize("settings", [{"callback_url": None}, {"dlr-mask": 0}],
                         ids=["without a callback URL", "with a dlr-mask of 0"])
async def test_no_reports_are_asked_for_or_expected(
        outbound: Outbound, kannel: FakeKannel, settings: dict[str, Any]) -> None:
    receipt = await channel_for(outbound, kannel.url("/cgi-bin/sendsms"), **settings).send(
        MESSAGE, POINT)
    assert "dlr-url" not in kannel.requests[0].query
    assert "dlr-mask" not in kannel.requests[0].query
    assert receipt.tracked is False


async def test_an_idempotency_key_unfit_for_a_url_is_replaced_by_the_message_id(
        outbound: Outbound, kannel: FakeKannel) -> None:
    message = Message(11, "down:11 at 2026-01-01", "down", "Down", "x")
    receipt = await channel_for(outbound, kannel.url("/cgi-bin/sendsms")).send(message, POINT)
    assert receipt.provider_id == "msg-11"
    assert "?id=msg-11&" in str(kannel.sent[0].dlr_url)


async def test_delivery_reports_come_back_through_the_dlr_url(
        outbound: Outbound, kannel: FakeKannel) -> None:
    receiver = CallbackReceiver(lambda request: channel.handle_callback(request))
    async with receiver:
        # A percent sign in the callback URL must survive Kannel's escape codes.
        channel = channel_for(outbound, kannel.url("/cgi-bin/sendsms"),
                              callback_url=receiver.url("/cb/z%C3%B3"))
        receipt = await channel.send(MESSAGE, POINT)
        sent = kannel.sent[0]
        assert await kannel.report(sent, 8, "ACK/", at=1767225600) == (200, "OK")
        assert await kannel.report(sent, 4) is None  # buffered: not in the mask
        await kannel.report(sent, 1, "id:77 sub:001 dlvrd:001 stat:DELIVRD err:000")
    assert all(r.url.startswith(receiver.url("/cb/z%C3%B3?")) for r in receiver.requests)
    submitted, delivered = receiver.events
    assert isinstance(submitted, DeliveryReport) and isinstance(delivered, DeliveryReport)
    assert (submitted.provider_id, submitted.status) == (receipt.provider_id, "accepted")
    assert submitted.at.isoformat() == "2026-01-01T00:00:00+00:00"
    assert delivered.status == "delivered" and "stat:DELIVRD" in (delivered.detail or "")


async def test_a_report_the_smsc_rejected_is_a_failure(
        outbound: Outbound, kannel: FakeKannel) -> None:
    receiver = CallbackReceiver(lambda request: channel.handle_callback(request))
    async with receiver:
        channel = channel_for(outbound, kannel.url("/cgi-bin/sendsms"),
                              callback_url=receiver.url("/cb/7"))
        await channel.send(MESSAGE, POINT)
        await kannel.report(kannel.sent[0], 16, "NACK/0x0000000b/Invalid Destination Address")
    report = single(receiver.events)
    assert isinstance(report, DeliveryReport) and report.status == "failed"
    assert report.detail == "rejected by the SMSC: NACK/0x0000000b/Invalid Destination Address"


async def test_an_inbound_sms_from_the_sms_service_becomes_a_message(
        outbound: Outbound, kannel: FakeKannel) -> None:
    receiver = CallbackReceiver(lambda request: channel.handle_callback(request))
    async with receiver:
        channel = channel_for(outbound, kannel.url("/cgi-bin/sendsms"),
                              callback_url=receiver.url("/cb/7"))
        get_url = sms_service_get_url(receiver.url("/cb/7"))
        assert await kannel.inbound(get_url, "0048600100200", "Stop, proszę") == (200, "")
    message = single(receiver.events)
    assert isinstance(message, InboundMessage)
    assert (message.address, message.text) == ("+48600100200", "Stop, proszę")


def callback(query: dict[str, str]) -> CallbackRequest:
    return CallbackRequest(method="GET", url="https://dozor.example/cb/7", query=query,
                           form={}, body=b"", headers={})


MALFORMED = {
    "nothing Kannel sends": {"foo": "bar"},
    "a report without an id": {"type": "1"},
    "a report whose type is not a number": {"id": "msg-11", "type": "%d"},
}


@pytest.mark.parametrize("query", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_callback_gets_400_and_no_events(
        outbound: Outbound, query: dict[str, str]) -> None:
    channel = channel_for(outbound, "http://127.0.0.1:13013/cgi-bin/sendsms")
    reply = await channel.handle_callback(callback(query))
    assert reply.status == 400 and reply.events == ()


@pytest.mark.parametrize("query", [{"id": "msg-11", "type": "3"},
                                   {"from": "ORANGE", "text": "Your bill"}],
                         ids=["an unknown report type", "a text from a name"])
async def test_callbacks_with_nothing_for_us_are_acknowledged_without_events(
        outbound: Outbound, query: dict[str, str]) -> None:
    channel = channel_for(outbound, "http://127.0.0.1:13013/cgi-bin/sendsms")
    reply = await channel.handle_callback(callback(query))
    assert reply.status == 200 and list(reply.events) == []


def test_the_config_has_kannel_defaults_and_checks_the_mask(outbound: Outbound) -> None:
    context = ChannelContext(outbound)
    channel = build_channel("kannel", {"username": "dozor", "password": "s3cret"}, context)
    assert isinstance(channel, KannelChannel)
    assert str(channel.config.sendsms_url) == "http://127.0.0.1:13013/cgi-bin/sendsms"
    assert "s3cret" not in repr(channel.config)
    assert "kannel" in kinds_for_point("sms")
    with pytest.raises(pydantic.ValidationError, match="dlr-mask|dlr_mask"):
        build_channel("kannel", {"username": "d", "password": "p", "dlr-mask": 32}, context)
