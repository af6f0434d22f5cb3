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
from dozor.notify.channels.messenger import MessengerChannel
from dozor.outbound import Outbound
from tests.notify.channels.chat2_support import MESSAGE, Fails, closed_port
from tests.servers.meta_graph import FakeGraph, hub_request

PSID = "1254477777772919"
PAGE_ID = "106540352242922"
SECRET = "app-secret-1"
POINT = ContactPoint(id=5, kind="messenger", address=PSID)


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    client = Outbound(user_agent="dozor-test")
    yield client
    await client.close()


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(page_token="page-token", psids={PSID}) as server:
        yield server


def channel(outbound: Outbound, api_base: str, timeout: float = 5.0,
            **config: Any) -> MessengerChannel:
    fields = {"page-access-token": "page-token", "app-secret": SECRET,
              "verify-token": "verify-me", "api-base": api_base, **config}
    built = build_channel("messenger", fields, ChannelContext(outbound=outbound,
                                                              timeout=timeout))
    assert isinstance(built, MessengerChannel)
    return built


async def test_an_alert_goes_as_a_tagged_message_with_the_token_in_a_header(
    graph: FakeGraph, outbound: Outbound,
) -> None:
    receipt = await channel(outbound, graph.url()).send(MESSAGE, POINT)

    [request] = graph.requests
    assert (request.method, request.path, request.query) == ("POST", "/v25.0/me/messages", {})
    assert request.headers["Authorization"] == "Bearer page-token"
    assert request.json == {
        "recipient": {"id": PSID}, "messaging_type": "MESSAGE_TAG", "tag": "ACCOUNT_UPDATE",
        "message": {"text": "Down: shop\nhttps://shop.example answered HTTP 503\n"
                            "https://dozor.example/monitors/3"},
    }
    assert receipt.provider_id == "m_1" and receipt.tracked


async def test_without_a_tag_it_sends_a_plain_update_and_cuts_long_text_at_2000(
    graph: FakeGraph, outbound: Outbound,
) -> None:
    long = replace(MESSAGE, text="x" * 5000)
    await channel(outbound, graph.url(), **{"message-tag": None}).send(long, POINT)
    body = graph.requests[-1].json
    assert body["messaging_type"] == "UPDATE" and "tag" not in body
    assert len(body["message"]["text"]) == 2000
    assert body["message"]["text"].endswith("…\nhttps://dozor.example/monitors/3")


def _error(code: int, subcode: int | None = None, status: int = 400,
           headers: dict[str, str] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": f"(#{code}) some text", "type": "OAuthException",
                             "code": code, "fbtrace_id": "x"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"status": status, "json": {"error": error}, "headers": headers or {}}


BUSINESS_USAGE = json.dumps({PAGE_ID: [{"type": "messenger", "call_count": 100,
                                        "total_cputime": 20, "total_time": 30,
                                        "estimated_time_to_regain_access": 5}]})


@pytest.mark.parametrize(("answer", "fails"), [
    pytest.param(_error(551, 1545041), Fails(True, code="551/1545041"),
                 id="this person isn't available"),
    pytest.param(_error(10, 2018278), Fails(True, code="10/2018278"),
                 id="outside the allowed window"),
    pytest.param(_error(10, 2018065), Fails(True, channel_fault=True, code="10/2018065"),
                 id="outside the window without the permission"),
    pytest.param(_error(10), Fails(True, channel_fault=True, code="10"),
                 id="permission denied"),
    pytest.param(_error(200, 2018028), Fails(True, channel_fault=True, code="200/2018028"),
                 id="app not allowed to message this person yet"),
    pytest.param(_error(368), Fails(True, channel_fault=True, code="368"),
                 id="page blocked for policy violations"),
    pytest.param(_error(613, headers={"X-Business-Use-Case-Usage": BUSINESS_USAGE}),
                 Fails(False, retry_after=300.0, code="613"),
                 id="rate limit with Meta's estimated time to regain access"),
    pytest.param(_error(4, headers={"X-App-Usage": '{"call_count": 100}'}),
                 Fails(False, code="4"), id="app rate limit without an estimate"),
    pytest.param(_error(32, headers={"Retry-After": "20"}),
                 Fails(False, retry_after=20.0, code="32"), id="rate limit with Retry-After"),
    pytest.param(_error(2, status=500), Fails(False, code="2"), id="temporary error"),
    pytest.param(_error(1200), Fails(False, code="1200"), id="temporary send failure"),
    pytest.param(_error(99999), Fails(True, channel_fault=True, code="99999"),
                 id="an unknown error code with HTTP 400"),
    pytest.param(_error(99999, status=503), Fails(False, code="99999"),
                 id="an unknown error code with HTTP 503"),
    pytest.param({"status": 400, "json": {"error": {"message": "no code"}}},
                 Fails(True, channel_fault=True, code="400"), id="an error without a code"),
    pytest.param({"status": 502, "body": "<html>Bad Gateway</html>"},
                 Fails(False, code="502", reason="HTTP 502"), id="HTTP 502 page"),
    pytest.param({"status": 404, "body": "<html>Not Found</html>"},
                 Fails(True, channel_fault=True, code="404"), id="HTTP 404 page"),
    pytest.param({"status": 429, "body": "", "headers": {"Retry-After": "9"}},
                 Fails(False, retry_after=9.0, code="429"), id="HTTP 429 with Retry-After"),
    pytest.param({"body": "garbage"}, Fails(False, reason="not JSON"), id="garbage body"),
    pytest.param({"delay": 3.0}, Fails(False, reason="did not answer within 0.3 s"),
                 id="no answer in time"),
])
async def test_each_graph_answer_becomes_the_right_delivery_error(
    graph: FakeGraph, outbound: Outbound, answer: dict[str, Any], fails: Fails,
) -> None:
    graph.answer_next(**answer)
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, graph.url(), timeout=0.3).send(MESSAGE, POINT)
    fails.check(caught.value)


async def test_a_wrong_page_token_is_the_channels_fault_and_never_shown(
    graph: FakeGraph, outbound: Outbound,
) -> None:
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, graph.url(), **{"page-access-token": "expired-token"}).send(
            MESSAGE, POINT)
    Fails(True, channel_fault=True, code="190", reason="Invalid OAuth").check(caught.value)
    assert "expired-token" not in caught.value.reason


async def test_an_unknown_psid_is_the_recipients_fault(
    graph: FakeGraph, outbound: Outbound,
) -> None:
    stranger = ContactPoint(id=6, kind="messenger", address="99999999")
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, graph.url()).send(MESSAGE, stranger)
    Fails(True, code="100/2018001", reason="No matching user").check(caught.value)


async def test_a_refused_connection_is_transient(outbound: Outbound) -> None:
    with pytest.raises(DeliveryError) as caught:
        await channel(outbound, f"http://127.0.0.1:{closed_port()}").send(MESSAGE, POINT)
    Fails(False, reason="Messenger unreachable: connection refused").check(caught.value)


def _verification(**query: str) -> CallbackRequest:
    return CallbackRequest(method="GET", url="https://dozor.example/cb", query=query,
                           form={}, body=b"", headers={})


@pytest.mark.parametrize(("query", "status", "body"), [
    ({"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"},
     200, "1158201444"),
    ({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"},
     403, "verification failed"),
    ({"hub.mode": "unsubscribe", "hub.verify_token": "verify-me", "hub.challenge": "1"},
     403, "verification failed"),
    ({"hub.mode": "subscribe", "hub.verify_token": "verify-me"}, 403, "verification failed"),
])
async def test_the_webhook_verification_echoes_the_challenge_only_for_our_token(
    graph: FakeGraph, outbound: Outbound, query: dict[str, str], status: int, body: str,
) -> None:
    reply = await channel(outbound, graph.url()).handle_callback(_verification(**query))
    assert (reply.status, reply.body, list(reply.events)) == (status, body, [])


AT = datetime(2016, 3, 22, 17, 47, 36, 253000, tzinfo=UTC)
STAMP = 1458668856253


def _page(*messaging: dict[str, Any], obj: str = "page") -> dict[str, Any]:
    return {"object": obj, "entry": [{"id": PAGE_ID, "time": STAMP,
                                      "messaging": list(messaging)}]}


def _from(psid: str = PSID, **event: Any) -> dict[str, Any]:
    return {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": STAMP, **event}


@pytest.mark.parametrize(("payload", "expected"), [
    pytest.param(_page(_from(delivery={"mids": ["m_1", "m_2"], "watermark": STAMP})),
                 [DeliveryReport("m_1", "delivered", AT), DeliveryReport("m_2", "delivered", AT)],
                 id="deliveries"),
    pytest.param(_page(_from(delivery={"watermark": STAMP})), [],
                 id="a delivery watermark without mids"),
    pytest.param(_page(_from(message={"mid": "m_9", "text": " STOP "})),
                 [InboundMessage("messenger", PSID, "STOP", AT)], id="a text"),
    pytest.param(_page(_from(message={"mid": "m_9", "text": "hi", "is_echo": True})), [],
                 id="an echo of the page's own message"),
    pytest.param(_page(_from(referral={"ref": "CONFIRM-4829", "source": "SHORTLINK",
                                       "type": "OPEN_THREAD"})),
                 [InboundMessage("messenger", PSID, "CONFIRM-4829", AT)],
                 id="an m.me link's ref"),
    pytest.param(_page(_from(postback={"title": "Get Started", "payload": "GET_STARTED",
                                       "referral": {"ref": "CONFIRM-4829",
                                                    "source": "SHORTLINK"}})),
                 [InboundMessage("messenger", PSID, "CONFIRM-4829", AT)],
                 id="get started from an m.me link"),
    pytest.param(_page(_from(optin={"ref": "CONFIRM-4829"})),
                 [InboundMessage("messenger", PSID, "CONFIRM-4829", AT)], id="an opt-in"),
    pytest.param(_page(_from(read={"watermark": STAMP})), [], id="read"),
    pytest.param(_page(_from(psid="x", message={"mid": "m", "text": "hi"})), [],
                 id="a sender id that is not a PSID"),
    pytest.param(_page(_from(message={"mid": "m", "text": "hi"}), obj="instagram"), [],
                 id="another product's webhook"),
    pytest.param({"object": "page", "entry": "nonsense"}, [], id="entries that are not a list"),
])
async def test_messenger_webhook_events_become_events(
    graph: FakeGraph, outbound: Outbound, payload: dict[str, Any], expected: list[Any],
) -> None:
    reply = await channel(outbound, graph.url()).handle_callback(hub_request(payload, SECRET))
    assert (reply.status, list(reply.events)) == (200, expected)


@pytest.mark.parametrize(("request_", "status"), [
    pytest.param(hub_request(_page(_from(message={"text": "STOP"})), "wrong-secret"), 403,
                 id="signed with another secret"),
    pytest.param(replace(hub_request(_page(), SECRET), headers={}), 403, id="unsigned"),
    pytest.param(hub_request(b"{not json", SECRET), 400, id="signed, not JSON"),
    pytest.param(replace(hub_request(_page(), SECRET), method="PUT"), 405, id="a PUT"),
])
async def test_a_webhook_call_that_is_forged_or_malformed_is_refused(
    graph: FakeGraph, outbound: Outbound, request_: CallbackRequest, status: int,
) -> None:
    reply = await channel(outbound, graph.url()).handle_callback(request_)
    assert (reply.status, list(reply.events)) == (status, [])


def test_the_config_refuses_an_unknown_tag_and_a_malformed_graph_version() -> None:
    context = ChannelContext(outbound=Outbound("t"))
    base = {"page-access-token": "t", "app-secret": "s", "verify-token": "v"}
    with pytest.raises(ValidationError, match="message-tag|message_tag"):
        build_channel("messenger", {**base, "message-tag": "PROMOTION"}, context)
    with pytest.raises(ValidationError, match="graph-version|graph_version"):
        build_channel("messenger", {**base, "graph-version": "25"}, context)
    assert isinstance(build_channel("messenger", base, context), MessengerChannel)
