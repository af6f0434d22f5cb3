from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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
    Receipt,
)
from dozor.notify.channels.smsapi import SmsapiChannel, SmsapiConfig, idx
from dozor.outbound import Outbound
from tests.servers.smsapi import FakeSmsapi, error
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
async def smsapi() -> AsyncIterator[FakeSmsapi]:
    async with FakeSmsapi(token="t0k3n") as server:
        yield server


def channel_for(outbound: Outbound, api_base: str, *, timeout: float = 5.0,
                callback_url: str | None = None, **config: Any) -> SmsapiChannel:
    settings = {"token": "t0k3n", "sender": "Dozor", "api-base": api_base, **config}
    context = ChannelContext(outbound, callback_url=callback_url, timeout=timeout)
    return SmsapiChannel(SmsapiConfig.model_validate(settings), context)


@dataclass
class Case:
    """One provider behaviour and what send() must make of it."""

    answers: tuple[Answer, ...] = ()
    setup: dict[str, Any] = field(default_factory=dict)  # token=..., points=..., blocked=...
    text: str = MESSAGE.text
    receipt: dict[str, Any] | None = None  # Receipt fields to expect, or...
    error: dict[str, Any] | None = None  # ...DeliveryError fields to expect


CASES = {
    "an accepted message gives its id, parts and cost": Case(
        receipt={"provider_id": "1".zfill(24), "parts": 1, "cost": Decimal("0.16")}),
    "a two-part message is billed as two": Case(
        text="x" * 200, receipt={"parts": 2, "cost": Decimal("0.32")}),
    "a number SMSAPI cannot send to is permanent": Case(
        setup={"blocked": {"48600100200"}},
        error={"permanent": True, "channel_fault": False, "provider_code": "13"}),
    "a wrong token is the channel's fault": Case(
        setup={"token": "another"},
        error={"permanent": False, "channel_fault": True, "provider_code": "101"}),
    "no points left is the channel's fault": Case(
        setup={"points": Decimal("0")},
        error={"permanent": False, "channel_fault": True, "provider_code": "103"}),
    "a sender name SMSAPI refuses is the channel's fault": Case(
        answers=(error(14, "Invalid sender field"),),
        error={"permanent": False, "channel_fault": True, "provider_code": "14"}),
    "an internal error is transient": Case(
        answers=(error(201, "System internal error"),),
        error={"permanent": False, "channel_fault": False, "provider_code": "201"}),
    "too many requests is transient": Case(
        answers=(error(203, "Too many requests"),),
        error={"permanent": False, "channel_fault": False, "provider_code": "203"}),
    "an HTTP 429 is transient after its Retry-After": Case(
        answers=(Answer(429, "Too Many Requests", headers={"Retry-After": "7"}),),
        error={"permanent": False, "channel_fault": False, "retry_after": 7.0,
               "provider_code": "429"}),
    "an HTTP 429 with SMSAPI's body keeps its code and Retry-After": Case(
        answers=(Answer(429, json.dumps({"error": 203, "message": "Too many requests"}),
                        headers={"Retry-After": "2"}),),
        error={"permanent": False, "retry_after": 2.0, "provider_code": "203"}),
    "an unknown error code is the channel's fault": Case(
        answers=(error(8, "Error in request"),),
        error={"permanent": False, "channel_fault": True, "provider_code": "8"}),
    "a 503 is transient": Case(
        answers=(Answer(503, "<html>Service Unavailable</html>"),),
        error={"permanent": False, "channel_fault": False, "provider_code": "503"}),
    "a 500 with garbage is transient": Case(
        answers=(Answer(500, "\x00\x01 not json"),),
        error={"permanent": False, "channel_fault": False, "provider_code": "500"}),
    "a 200 with garbage is transient, as idx makes the retry safe": Case(
        answers=(Answer(200, "OK:123:0.16"),),
        error={"permanent": False, "channel_fault": False, "provider_code": "200"}),
    "a 200 with JSON but no message list is transient": Case(
        answers=(Answer(200, '{"count": 0, "list": []}', content_type="application/json"),),
        error={"permanent": False, "channel_fault": False}),
    "a 200 with a list that is not of messages is transient": Case(
        answers=(Answer(200, '{"count": 1, "list": ["AAA"]}'),),
        error={"permanent": False, "channel_fault": False}),
    "a 404 page is the channel's fault (a wrong api-base)": Case(
        answers=(Answer(404, "<html>Not Found</html>", content_type="text/html"),),
        error={"permanent": False, "channel_fault": True, "provider_code": "404"}),
    "an answer that never comes is transient": Case(
        answers=(Answer(delay=5.0),), error={"permanent": False, "channel_fault": False}),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_send_maps_each_answer_of_smsapi(outbound: Outbound, smsapi: FakeSmsapi,
                                               case: Case) -> None:
    smsapi.queue(*case.answers)
    for name, value in case.setup.items():
        setattr(smsapi, name, value)
    channel = channel_for(outbound, smsapi.url(), timeout=0.3)
    message = Message(MESSAGE.id, MESSAGE.idempotency_key, "down", "Down", case.text)
    if case.receipt is not None:
        receipt = await channel.send(message, POINT)
        assert {name: getattr(receipt, name) for name in case.receipt} == case.receipt
        return
    assert case.error is not None
    with pytest.raises(DeliveryError) as raised:
        await channel.send(message, POINT)
    assert {name: getattr(raised.value, name) for name in case.error} == case.error


async def test_a_refused_connection_is_transient(outbound: Outbound) -> None:
    channel = channel_for(outbound, f"http://127.0.0.1:{unused_port()}")
    with pytest.raises(DeliveryError) as raised:
        await channel.send(MESSAGE, POINT)
    assert raised.value.permanent is False and raised.value.channel_fault is False
    assert "refused" in raised.value.reason


async def test_the_request_carries_token_number_text_sender_and_idempotency_key(
        outbound: Outbound, smsapi: FakeSmsapi) -> None:
    channel = channel_for(outbound, smsapi.url(), callback_url="https://dozor.example/cb/7")
    await channel.send(MESSAGE, POINT)
    seen = single(smsapi.requests)
    assert seen.headers["Authorization"] == "Bearer t0k3n"
    assert seen.form == {
        "to": "48600100200", "message": MESSAGE.text, "from": "Dozor", "format": "json",
        "encoding": "utf-8", "details": "1", "idx": idx("msg-11"), "check_idx": "1",
        "notify_url": "https://dozor.example/cb/7"}


async def test_without_a_callback_url_no_notify_url_is_sent(
        outbound: Outbound, smsapi: FakeSmsapi) -> None:
    await channel_for(outbound, smsapi.url(), sender=None).send(MESSAGE, POINT)
    assert "notify_url" not in smsapi.requests[0].form
    assert "from" not in smsapi.requests[0].form


async def test_a_retry_after_a_crash_is_not_a_second_sms(
        outbound: Outbound, smsapi: FakeSmsapi) -> None:
    channel = channel_for(outbound, smsapi.url())
    first = await channel.send(MESSAGE, POINT)
    again = await channel.send(MESSAGE, POINT)
    assert len(smsapi.sent) == 1
    assert first.provider_id == smsapi.sent[0].id
    assert again == Receipt(provider_id=None, parts=1)


async def test_unicode_text_goes_as_utf8_and_counts_ucs2_parts(
        outbound: Outbound, smsapi: FakeSmsapi) -> None:
    text = "Serwer nie działa: " + "ż" * 60
    message = Message(12, "msg-12", "down", "Down", text)
    receipt = await channel_for(outbound, smsapi.url()).send(message, POINT)
    assert smsapi.sent[0].text == text
    assert receipt.parts == 2


async def test_test_mode_sends_nothing_and_expects_no_reports(
        outbound: Outbound, smsapi: FakeSmsapi) -> None:
    receipt = await channel_for(outbound, smsapi.url(), test=True).send(MESSAGE, POINT)
    assert smsapi.requests[0].form["test"] == "1"
    assert smsapi.sent == []
    assert receipt.tracked is False


async def test_a_delivery_report_comes_back_through_the_callback(
        outbound: Outbound, smsapi: FakeSmsapi) -> None:
    receiver = CallbackReceiver(lambda request: channel.handle_callback(request))
    async with receiver:
        channel = channel_for(outbound, smsapi.url(), callback_url=receiver.url("/cb/7"))
        receipt = await channel.send(MESSAGE, POINT)
        assert await smsapi.report(smsapi.sent[0].id, "DELIVERED") == (200, "OK")
        assert await smsapi.report(smsapi.sent[0].id, "UNDELIVERED") == (200, "OK")
    delivered, undelivered = receiver.events
    assert isinstance(delivered, DeliveryReport)
    assert (delivered.provider_id, delivered.status) == (receipt.provider_id, "delivered")
    assert isinstance(undelivered, DeliveryReport) and undelivered.status == "failed"
    assert undelivered.detail == "UNDELIVERED (405)"


async def test_an_inbound_sms_becomes_an_inbound_message(
        outbound: Outbound, smsapi: FakeSmsapi) -> None:
    receiver = CallbackReceiver(lambda request: channel.handle_callback(request))
    async with receiver:
        channel = channel_for(outbound, smsapi.url(), callback_url=receiver.url("/cb/7"))
        assert await smsapi.inbound(receiver.url("/cb/7"), "48600100200", "STOP",
                                    at=1767225600) == (200, "OK")
    message = single(receiver.events)
    assert isinstance(message, InboundMessage)
    assert (message.address, message.text) == ("+48600100200", "STOP")
    assert message.at.isoformat() == "2026-01-01T00:00:00+00:00"


def callback(query: dict[str, str] | None = None,
             form: dict[str, str] | None = None) -> CallbackRequest:
    return CallbackRequest(method="GET" if form is None else "POST",
                           url="https://dozor.example/cb/7", query=query or {},
                           form=form or {}, body=b"", headers={})


async def test_several_reports_in_one_callback_are_all_read(outbound: Outbound) -> None:
    channel = channel_for(outbound, "https://api.smsapi.pl")
    reply = await channel.handle_callback(callback({
        "MsgId": "AAA,BBB,CCC", "status": "404,406,409",
        "status_name": "DELIVERED,FAILED,QUEUE", "idx": "msg-1,msg-2,msg-3",
        "donedate": "1767225600,1767225601,1767225602"}))
    assert (reply.status, reply.body) == (200, "OK")
    assert [(e.provider_id, e.status) for e in reply.events
            if isinstance(e, DeliveryReport)] == [("AAA", "delivered"), ("BBB", "failed")]


async def test_a_report_with_only_a_status_code_is_read_by_its_code(outbound: Outbound) -> None:
    channel = channel_for(outbound, "https://api.smsapi.pl")
    reply = await channel.handle_callback(callback({"MsgId": "AAA", "status": "404"}))
    report = single(reply.events)
    assert isinstance(report, DeliveryReport) and report.status == "delivered"


MALFORMED = {
    "nothing SMSAPI sends": {"foo": "bar"},
    "a report without a status": {"MsgId": "AAA"},
    "fewer statuses than ids": {"MsgId": "AAA,BBB", "status_name": "DELIVERED"},
    "an inbound SMS without text": {"sms_from": "48600100200"},
}


@pytest.mark.parametrize("query", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_callback_gets_400_and_no_events(
        outbound: Outbound, query: dict[str, str]) -> None:
    reply = await channel_for(outbound, "https://api.smsapi.pl").handle_callback(
        callback(query))
    assert reply.status == 400 and reply.events == ()


async def test_an_inbound_sms_from_a_name_is_acknowledged_without_events(
        outbound: Outbound) -> None:
    reply = await channel_for(outbound, "https://api.smsapi.pl").handle_callback(
        callback(form={"sms_from": "ORANGE", "sms_text": "Your bill", "sms_to": "48500"}))
    assert (reply.status, reply.events) == (200, [])


def test_the_config_reads_kebab_case_and_hides_the_token(outbound: Outbound) -> None:
    context = ChannelContext(outbound)
    channel = build_channel("smsapi", {"token": "s3cret", "api-base": "https://api.smsapi.com"},
                            context)
    assert isinstance(channel, SmsapiChannel)
    assert "s3cret" not in repr(channel.config)
    assert "smsapi" in kinds_for_point("sms")
    with pytest.raises(ValueError, match="api-base|api_base"):
        build_channel("smsapi", {"token": "x", "api-base": "not a url"}, context)
