from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from dozor.notify.channels import build_channel
from dozor.notify.channels.base import (
    CallbackRequest,
    ChannelContext,
    ContactPoint,
    DeliveryError,
    DeliveryReport,
    InboundMessage,
)
from dozor.notify.channels.whatsapp import WhatsappChannel
from dozor.outbound import Outbound
from tests.notify.channels.chat2_support import MESSAGE, Fails, closed_port
from tests.servers.meta_graph import FakeGraph, hub_request

PNID = "106540352242922"
SECRET = "app-secret-2"
PHONE = "+48600100200"
POINT = ContactPoint(id=8, kind="whatsapp", address=PHONE)
TEMPLATES = {("monitor_down", "en"): 2, ("monitor_up", "en"): 1, ("verify_code", "pl"): 1}


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    client = Outbound(user_agent="dozor-test")
    yield client
    await client.close()


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(whatsapp_token="wa-token", phone_number_id=PNID,
                         templates=TEMPLATES) as server:
        yield server


def channel(outbound: Outbound, api_base: str, timeout: float = 5.0,
            **config: Any) -> WhatsappChannel:
    fields = {"access-token": "wa-token", "app-secret": SECRET, "verify-token": "verify-me",
              "phone-number-id": PNID, "api-base": api_base,
              "templates": {"down": "monitor_down", "up": "monitor_up"}, **config}
    built = build_channel("whatsapp", fields, ChannelContext(outbound=outbound,
                                                             timeout=timeout))
    assert isinstance(built, WhatsappChannel)
    return built


async def test_an_alert_goes_as_the_events_template_with_subject_and_text(
    graph: FakeGraph, outbound: Outbound,
) -> None:
    receipt = await channel(outbound, graph.url()).send(MESSAGE, POINT)

    [request] = graph.requests
    assert (request.method, request.path) == ("POST", f"/v25.0/{PNID}/messages")
    assert request.headers["Authorization"] == "Bearer wa-token"
    assert request.json == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": PHONE,
        "type": "template",
        "template": {"name": "monitor_down", "language": {"code": "en"}, "components": [
            {"type": "body", "parameters": [
                {"type": "text", "text": "Down: shop"},
                {"type": "text", "text": "https://shop.example answered HTTP 503"}]}]},
    }
    assert receipt.provider_id is not None and receipt.provider_id.startswith("wamid.")


async def test_a_message_naming_a_template_uses_it_in_the_messages_language(
    graph: FakeGraph, outbound: Outbound,
) -> None:
    code = replace(MESSAGE, event="verification", template="verify_code",
                   template_params=("482913",), language="pl")
    await channel(outbound, graph.url()).send(code, POINT)
    assert graph.requests[-1].json["template"] == {
        "name": "verify_code", "language": {"code": "pl"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "482913"}]}]}


async def test_the_configured_language_wins_over_the_messages(
    graph: FakeGraph, outbound: Outbound,
) -> None:
    polish = replace(MESSAGE, language="pl")
    await channel(outbound, graph.url(), language="en").send(polish, POINT)
    assert graph.requests[-1].json["template"]["language"] == {"code": "en"}


async def test_parameters_are_flattened_to_one_line_as_meta_demands(
    graph: FakeGraph, outbound: Outbound,
) -> None:
    messy = replace(MESSAGE, text="line one\nline two\t\ttabbed      spaced", subject="  ")
    await channel(outbound, graph.url()).send(messy, POINT)
    parameters = graph.requests[-1].json["template"]["components"][0]["parameters"]
    assert [p["text"] for p in parameters] == ["-", "line one line two tabbed spaced"]


async def test_an_event_without_a_template_is_never_sent_as_free_text(
    graph: FakeGraph, outbound: Outbound,
) -> None:
    digest = replace(MESSAGE, event="digest")
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, graph.url()).send(digest, POINT)
    Fails(True, channel_fault=True, reason="no WhatsApp template for 'digest'").check(
        caught.value)
    assert graph.requests == []


@pytest.mark.parametrize(("config", "message", "fails"), [
    pytest.param({"templates": {"down": "monitor_gone"}}, MESSAGE,
                 Fails(True, channel_fault=True, code="132001", reason="does not exist"),
                 id="a template Meta does not know"),
    pytest.param({"language": "de"}, MESSAGE,
                 Fails(True, channel_fault=True, code="132001"),
                 id="a template not approved in that language"),
    pytest.param({}, replace(MESSAGE, event="up"),
                 Fails(True, channel_fault=True, code="132000"),
                 id="a template with another number of parameters"),
    pytest.param({"access-token": "expired"}, MESSAGE,
                 Fails(True, channel_fault=True, code="190"), id="a wrong token"),
    pytest.param({"phone-number-id": "999"}, MESSAGE,
                 Fails(True, channel_fault=True, code="100/33"), id="a wrong phone number id"),
])
async def test_configuration_mistakes_are_the_channels_fault(
    graph: FakeGraph, outbound: Outbound, config: dict[str, Any], message: Any, fails: Fails,
) -> None:
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, graph.url(), **config).send(message, POINT)
    fails.check(caught.value)
    assert "expired" not in caught.value.reason


def _error(code: int, status: int = 400, headers: dict[str, str] | None = None,
           details: str = "see the documentation") -> dict[str, Any]:
    error = {"message": f"(#{code}) some title", "type": "OAuthException", "code": code,
             "error_data": {"messaging_product": "whatsapp", "details": details},
             "fbtrace_id": "x"}
    return {"status": status, "json": {"error": error}, "headers": headers or {}}


BUSINESS_USAGE = json.dumps({"102290129340398": [
    {"type": "whatsapp", "call_count": 100, "estimated_time_to_regain_access": 2}]})


@pytest.mark.parametrize(("answer", "fails"), [
    pytest.param(_error(131026, details="Message undeliverable"),
                 Fails(True, code="131026", reason="(Message undeliverable)"),
                 id="undeliverable"),
    pytest.param(_error(131047), Fails(True, code="131047"), id="re-engagement"),
    pytest.param(_error(131050), Fails(True, code="131050"), id="stopped marketing messages"),
    pytest.param(_error(130429, headers={"X-Business-Use-Case-Usage": BUSINESS_USAGE}),
                 Fails(False, retry_after=120.0, code="130429"), id="throughput reached"),
    pytest.param(_error(131056), Fails(False, code="131056"), id="pair rate limit"),
    pytest.param(_error(80007, headers={"Retry-After": "11"}),
                 Fails(False, retry_after=11.0, code="80007"), id="account rate limit"),
    pytest.param(_error(131048), Fails(False, channel_fault=True, code="131048"),
                 id="spam rate limit on our number"),
    pytest.param(_error(131000, status=500), Fails(False, code="131000"),
                 id="something went wrong"),
    pytest.param(_error(132015), Fails(True, channel_fault=True, code="132015"),
                 id="template paused"),
    pytest.param(_error(133010), Fails(True, channel_fault=True, code="133010"),
                 id="phone number not registered"),
    pytest.param(_error(131042), Fails(True, channel_fault=True, code="131042"),
                 id="payment issue"),
    pytest.param({"status": 503, "body": "<html>unavailable</html>"},
                 Fails(False, code="503"), id="HTTP 503 page"),
    pytest.param({"status": 401, "body": "no"}, Fails(True, channel_fault=True, code="401"),
                 id="HTTP 401 without a Graph error"),
    pytest.param({"body": "{\"messaging_product\": "}, Fails(False, reason="not JSON"),
                 id="a cut-off body"),
    pytest.param({"delay": 3.0}, Fails(False, reason="did not answer within 0.3 s"),
                 id="no answer in time"),
])
async def test_each_cloud_api_answer_becomes_the_right_delivery_error(
    graph: FakeGraph, outbound: Outbound, answer: dict[str, Any], fails: Fails,
) -> None:
    graph.answer_next(**answer)
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, graph.url(), timeout=0.3).send(MESSAGE, POINT)
    fails.check(caught.value)


async def test_a_refused_connection_is_transient(outbound: Outbound) -> None:
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, f"http://127.0.0.1:{closed_port()}").send(MESSAGE, POINT)
    Fails(False, reason="WhatsApp unreachable: connection refused").check(caught.value)


async def test_the_webhook_verification_echoes_the_challenge_only_for_our_token(
    graph: FakeGraph, outbound: Outbound,
) -> None:
    whatsapp = channel(outbound, graph.url())
    query = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "42"}
    good = CallbackRequest("GET", "https://dozor.example/cb", query, {}, b"", {})
    bad = replace(good, query={**query, "hub.verify_token": "verify-you"})
    assert (await whatsapp.handle_callback(good)).body == "42"
    assert (await whatsapp.handle_callback(bad)).status == 403


AT = datetime(2022, 11, 23, 20, 2, 58, tzinfo=UTC)
STAMP = "1669233778"


def _webhook(*values: dict[str, Any], obj: str = "whatsapp_business_account") -> dict[str, Any]:
    metadata = {"display_phone_number": "15550783881", "phone_number_id": PNID}
    return {"object": obj, "entry": [
        {"id": "102290129340398", "changes": [
            {"field": "messages", "value": {"messaging_product": "whatsapp",
                                            "metadata": metadata, **value}}]}
        for value in values]}


def _status(status: str, **more: Any) -> dict[str, Any]:
    return {"statuses": [{"id": "wamid.A1", "status": status, "timestamp": STAMP,
                          "recipient_id": "48600100200", **more}]}


def _message(kind: str, **content: Any) -> dict[str, Any]:
    sender = content.pop("sender", "48600100200")
    return {"contacts": [{"profile": {"name": "Ann"}, "wa_id": sender}],
            "messages": [{"from": sender, "id": "wamid.B2", "timestamp": STAMP, "type": kind,
                          **content}]}


UNDELIVERABLE = {"code": 131026, "title": "Message undeliverable",
                 "error_data": {"details": "Message Undeliverable."}}


@pytest.mark.parametrize(("payload", "expected"), [
    pytest.param(_webhook(_status("sent")), [DeliveryReport("wamid.A1", "accepted", AT)],
                 id="sent"),
    pytest.param(_webhook(_status("delivered")), [DeliveryReport("wamid.A1", "delivered", AT)],
                 id="delivered"),
    pytest.param(_webhook(_status("read")),
                 [DeliveryReport("wamid.A1", "delivered", AT, "read")], id="read"),
    pytest.param(_webhook(_status("failed", errors=[UNDELIVERABLE])),
                 [DeliveryReport("wamid.A1", "failed", AT, "131026: Message undeliverable")],
                 id="failed"),
    pytest.param(_webhook(_status("deleted")), [], id="a status we do not know"),
    pytest.param(_webhook(_message("text", text={"body": " STOP "})),
                 [InboundMessage("whatsapp", PHONE, "STOP", AT)], id="a text"),
    pytest.param(_webhook(_message("button", button={"text": "Stop alerts",
                                                     "payload": "Stop alerts"})),
                 [InboundMessage("whatsapp", PHONE, "Stop alerts", AT)],
                 id="a quick-reply button"),
    pytest.param(_webhook(_message("image", image={"id": "1", "mime_type": "image/jpeg"})), [],
                 id="an image"),
    pytest.param(_webhook(_message("text", text={"body": "hi"}, sender="12")), [],
                 id="a sender that is not a phone number"),
    pytest.param(_webhook(_status("delivered"), _message("text", text={"body": "482913"})),
                 [DeliveryReport("wamid.A1", "delivered", AT),
                  InboundMessage("whatsapp", PHONE, "482913", AT)],
                 id="two entries at once"),
    pytest.param(_webhook(_status("sent"), obj="page"), [], id="another product's webhook"),
])
async def test_cloud_api_webhook_events_become_events(
    graph: FakeGraph, outbound: Outbound, payload: dict[str, Any], expected: list[Any],
) -> None:
    reply = await channel(outbound, graph.url()).handle_callback(hub_request(payload, SECRET))
    assert (reply.status, list(reply.events)) == (200, expected)


@pytest.mark.parametrize(("request_", "status"), [
    pytest.param(hub_request(_webhook(_status("failed")), "another-secret"), 403,
                 id="signed with another secret"),
    pytest.param(hub_request(b'"just a string"', SECRET), 400, id="signed, not an object"),
])
async def test_a_webhook_call_that_is_forged_or_malformed_is_refused(
    graph: FakeGraph, outbound: Outbound, request_: CallbackRequest, status: int,
) -> None:
    reply = await channel(outbound, graph.url()).handle_callback(request_)
    assert (reply.status, list(reply.events)) == (status, [])


def test_the_config_needs_a_numeric_phone_number_id() -> None:
    with pytest.raises(ValidationError, match="phone-number-id|phone_number_id"):
        build_channel("whatsapp", {"access-token": "t", "app-secret": "s",
                                   "verify-token": "v", "phone-number-id": "+48 600"},
                      ChannelContext(outbound=Outbound("t")))
