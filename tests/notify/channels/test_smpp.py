"""The smpp channel against a real SMPP server (smpp34's, see tests/servers/smpp.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from dozor.notify.channels import build_channel
from dozor.notify.channels.base import (
    ChannelContext,
    ChannelEvent,
    ContactPoint,
    DeliveryError,
    DeliveryReport,
    InboundMessage,
    Message,
)
from dozor.notify.channels.smpp import SmppChannel, SmppConfig
from dozor.notify.sms_parts import count_parts
from dozor.outbound import Outbound
from tests.servers.certs import make_certificates
from tests.servers.smpp import (
    ESME_RINVBNDSTS,
    ESME_RINVDSTADR,
    ESME_RINVMSGLEN,
    ESME_RINVPASWD,
    ESME_RINVSRCADR,
    ESME_RMSGQFUL,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    SmscSimulator,
)
from tests.servers.streams import serve_stream, unused_port

POINT = ContactPoint(id=1, kind="sms", address="+48600100200")


class Sink:
    def __init__(self) -> None:
        self.events: list[ChannelEvent] = []
        self.failing = False

    async def __call__(self, events: Sequence[ChannelEvent]) -> None:
        if self.failing:
            raise RuntimeError("database is down")
        self.events.extend(events)


def message(text: str = "Server down: api.example.com") -> Message:
    return Message(id=1, idempotency_key="k1", event="down", subject="down", text=text)


@pytest.fixture
async def smsc() -> AsyncIterator[SmscSimulator]:
    async with SmscSimulator() as server:
        yield server


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def channels() -> AsyncIterator[list[SmppChannel]]:
    made: list[SmppChannel] = []
    yield made
    for channel in made:
        await channel.close()


@pytest.fixture
def make(smsc: SmscSimulator, sink: Sink, channels: list[SmppChannel]) -> Any:
    def make(*, timeout: float = 2.0, **overrides: Any) -> SmppChannel:
        config = {"host": "127.0.0.1", "port": smsc.port, "system-id": "dozor",
                  "password": "secret", "system-type": "alerts", "source-addr": "Dozor",
                  "reconnect-delay": 0.05, "response-timeout": 1.0, **overrides}
        context = ChannelContext(outbound=Outbound("dozor-test"), sink=sink, timeout=timeout)
        channel = build_channel("smpp", config, context)
        assert isinstance(channel, SmppChannel)
        channels.append(channel)
        return channel
    return make


async def eventually(condition: Any) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


async def test_it_binds_submits_and_reports_the_delivery_receipt(
        smsc: SmscSimulator, sink: Sink, make: Any) -> None:
    channel = make()
    await channel.start()
    assert channel.bound
    assert [(b.system_id, b.password, b.system_type) for b in smsc.binds] == [
        ("dozor", "secret", "alerts")]

    receipt = await channel.send(message(), POINT)

    sent = smsc.received[0]
    assert receipt.provider_id == sent.message_id
    assert (receipt.parts, receipt.tracked) == (1, True)
    assert (sent.destination_addr, sent.dest_addr_ton, sent.dest_addr_npi) == (
        "48600100200", 1, 1)
    assert (sent.source_addr, sent.source_addr_ton, sent.source_addr_npi) == ("Dozor", 5, 0)
    assert (sent.registered_delivery, sent.data_coding, sent.esm_class) == (1, 0, 0)
    assert sent.short_message == b"Server down: api.example.com"

    assert await smsc.receipt(sent.message_id or "", "DELIVRD") == 0
    [report] = sink.events
    assert isinstance(report, DeliveryReport)
    assert (report.provider_id, report.status, report.detail) == (
        sent.message_id, "delivered", "stat:DELIVRD err:000")

    await channel.close()
    await eventually(lambda: smsc.sessions == 0)
    assert "unbind" in smsc.commands


@pytest.mark.parametrize("stat, tlvs, status", [
    ("DELIVRD", False, "delivered"),
    ("DELIVRD", True, "delivered"),
    ("UNDELIV", False, "failed"),
    ("UNDELIV", True, "failed"),
    ("EXPIRED", False, "failed"),
    ("REJECTD", True, "failed"),
    ("ENROUTE", False, "accepted"),
    ("ACCEPTD", True, "accepted"),
])
async def test_receipts_say_what_became_of_the_message(
        smsc: SmscSimulator, sink: Sink, make: Any, stat: str, tlvs: bool,
        status: str) -> None:
    channel = make()
    receipt = await channel.send(message(), POINT)
    assert await smsc.receipt(receipt.provider_id, stat, "042", tlvs=tlvs) == 0
    [report] = sink.events
    assert isinstance(report, DeliveryReport)
    assert (report.provider_id, report.status) == (receipt.provider_id, status)
    assert report.detail == f"stat:{stat} err:042"


async def test_a_long_gsm7_text_goes_in_concatenated_parts(
        smsc: SmscSimulator, make: Any) -> None:
    text = "x" * 152 + "€" + "y" * 100  # the escape of € must not end part 1
    channel = make()
    receipt = await channel.send(message(text), POINT)

    assert receipt.parts == 2 == count_parts(text).parts
    first, second = smsc.received
    assert receipt.provider_id == first.message_id
    assert {first.esm_class, second.esm_class} == {0x40}
    assert {first.data_coding, second.data_coding} == {0}
    udh1, udh2 = first.short_message[:6], second.short_message[:6]
    assert udh1[:3] == udh2[:3] == b"\x05\x00\x03" and udh1[3] == udh2[3]
    assert (udh1[4:], udh2[4:]) == (b"\x02\x01", b"\x02\x02")
    assert first.short_message[6:] == b"x" * 152
    assert second.short_message[6:] == b"\x1b\x65" + b"y" * 100


async def test_a_long_ucs2_text_goes_in_ucs2_parts(smsc: SmscSimulator, make: Any) -> None:
    text = "Serwer nie działa: api.example.com. " * 4 + "🔥"
    channel = make()
    receipt = await channel.send(message(text), POINT)

    assert receipt.parts == count_parts(text).parts == 3
    assert [s.data_coding for s in smsc.received] == [8, 8, 8]
    assert [s.short_message[4:6] for s in smsc.received] == [b"\x03\x01", b"\x03\x02",
                                                              b"\x03\x03"]
    assert all(len(s.short_message) <= 140 for s in smsc.received)
    joined = b"".join(s.short_message[6:] for s in smsc.received).decode("utf-16-be")
    assert joined == text


async def test_a_short_ucs2_text_is_one_part_without_a_header(
        smsc: SmscSimulator, make: Any) -> None:
    receipt = await make().send(message("Serwer nie działa"), POINT)
    [sent] = smsc.received
    assert (receipt.parts, sent.esm_class, sent.data_coding) == (1, 0, 8)
    assert sent.short_message == "Serwer nie działa".encode("utf-16-be")


@pytest.mark.parametrize("status, permanent, channel_fault, retry_after, code", [
    (ESME_RTHROTTLED, False, False, 7.0, "ESME_RTHROTTLED"),
    (ESME_RMSGQFUL, False, False, 7.0, "ESME_RMSGQFUL"),
    (ESME_RSYSERR, False, False, None, "ESME_RSYSERR"),
    (ESME_RINVDSTADR, True, False, None, "ESME_RINVDSTADR"),
    (ESME_RINVSRCADR, True, True, None, "ESME_RINVSRCADR"),
    (ESME_RINVMSGLEN, True, True, None, "ESME_RINVMSGLEN"),
])
async def test_refusals_map_to_delivery_errors(
        smsc: SmscSimulator, make: Any, status: int, permanent: bool, channel_fault: bool,
        retry_after: float | None, code: str) -> None:
    channel = make(**{"throttled-retry-after": 7})
    smsc.submit_statuses.append(status)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(message(), POINT)
    error = caught.value
    assert (error.permanent, error.channel_fault) == (permanent, channel_fault)
    assert (error.retry_after, error.provider_code) == (retry_after, code)
    assert await channel.send(message(), POINT)  # the link is fine for the next one


async def test_an_smsc_that_forgot_the_bind_gets_a_new_one(
        smsc: SmscSimulator, make: Any) -> None:
    channel = make()
    smsc.submit_statuses.append(ESME_RINVBNDSTS)
    with pytest.raises(DeliveryError, match="ESME_RINVBNDSTS") as caught:
        await channel.send(message(), POINT)
    assert not caught.value.permanent
    await eventually(lambda: channel.bound and len(smsc.binds) == 2)
    assert await channel.send(message(), POINT)


async def test_a_refused_second_part_fails_the_message(smsc: SmscSimulator, make: Any) -> None:
    smsc.submit_statuses.extend([0, ESME_RTHROTTLED])
    with pytest.raises(DeliveryError, match=r"part 2 of 3") as caught:
        await make().send(message("z" * 400), POINT)
    assert not caught.value.permanent
    assert len(smsc.received) == 2  # part 3 never went


async def test_a_refused_password_is_the_channels_fault(smsc: SmscSimulator, make: Any) -> None:
    channel = make(password="wrong")
    await channel.start()
    assert not channel.bound
    with pytest.raises(DeliveryError) as caught:
        await channel.send(message(), POINT)
    error = caught.value
    assert (error.permanent, error.channel_fault, error.provider_code) == (
        True, True, "ESME_RINVPASWD")
    assert smsc.binds[0].status == ESME_RINVPASWD
    assert smsc.received == []


async def test_a_bind_refused_for_a_system_error_is_transient(
        smsc: SmscSimulator, make: Any) -> None:
    smsc.bind_status = ESME_RSYSERR
    channel = make(**{"reconnect-delay": 30})
    await channel.start()
    with pytest.raises(DeliveryError) as caught:
        await channel.send(message(), POINT)
    assert not caught.value.permanent
    assert caught.value.retry_after is not None and caught.value.retry_after > 20


async def test_an_smsc_that_refuses_connections_fails_the_send_fast(make: Any) -> None:
    channel = make(port=unused_port(), **{"reconnect-delay": 10})
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="cannot bind") as caught:
        await channel.send(message(), POINT)
    assert not caught.value.permanent
    assert time.monotonic() - started < 1.5


async def test_a_peer_that_does_not_speak_smpp_fails_the_send(make: Any) -> None:
    async with serve_stream(banner=b"HTTP/1.1 400 Bad Request\r\n\r\n") as server:
        channel = make(port=server.port, **{"reconnect-delay": 10})
        with pytest.raises(DeliveryError, match="cannot bind.*PDU of") as caught:
            await channel.send(message(), POINT)
    assert not caught.value.permanent


async def test_it_binds_again_after_the_smsc_drops_the_link(
        smsc: SmscSimulator, make: Any) -> None:
    channel = make(**{"reconnect-delay": 0.2})
    assert await channel.send(message(), POINT)

    await smsc.drop()
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:  # no hanging while the link is down
        await channel.send(message(), POINT)
    assert not caught.value.permanent
    assert time.monotonic() - started < 1.0

    await eventually(lambda: channel.bound and len(smsc.binds) == 2)
    receipt = await channel.send(message(), POINT)
    assert receipt.provider_id == smsc.received[-1].message_id


async def test_it_binds_again_after_the_smsc_unbinds(smsc: SmscSimulator, make: Any) -> None:
    channel = make()
    await channel.start()
    await smsc.wait_bound()
    await smsc.unbind_all()
    await eventually(lambda: len(smsc.binds) == 2 and channel.bound)
    assert "unbind_resp" in smsc.commands
    assert await channel.send(message(), POINT)


async def test_an_smsc_that_stops_answering_fails_the_send_within_the_timeout(
        smsc: SmscSimulator, make: Any) -> None:
    channel = make(timeout=0.5)
    await channel.start()
    smsc.hold_submits = True
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="no submit_sm_resp") as caught:
        await channel.send(message(), POINT)
    assert not caught.value.permanent
    assert time.monotonic() - started < 1.0


async def test_a_silent_network_is_noticed_by_enquire_link(
        smsc: SmscSimulator, make: Any) -> None:
    channel = make(**{"enquire-link-interval": 0.1, "response-timeout": 0.3})
    await channel.start()
    smsc.frozen = True
    await eventually(lambda: not channel.bound)
    smsc.frozen = False
    await eventually(lambda: channel.bound and len(smsc.binds) == 2)


async def test_it_keeps_the_link_alive_and_answers_the_smscs_enquire_link(
        smsc: SmscSimulator, make: Any) -> None:
    channel = make(**{"enquire-link-interval": 0.05})
    await channel.start()
    await eventually(lambda: smsc.commands.count("enquire_link") >= 3)
    assert await smsc.enquire_client() == 0
    assert channel.bound and len(smsc.binds) == 1


async def test_the_window_bounds_submits_awaiting_an_answer(
        smsc: SmscSimulator, make: Any) -> None:
    channel = make(window=2, timeout=5.0)
    await channel.start()
    smsc.hold_submits = True
    sends = [asyncio.create_task(channel.send(message(), POINT)) for _ in range(5)]
    await eventually(lambda: len(smsc.received) == 2)  # two at once: a window, not a queue
    await asyncio.sleep(0.1)
    assert len(smsc.received) == 2  # and no more than two
    while not all(send.done() for send in sends):
        smsc.answer_held()
        await asyncio.sleep(0.02)
    receipts = [send.result() for send in sends]
    assert len({r.provider_id for r in receipts}) == 5


async def test_a_text_from_a_phone_reaches_the_sink(
        smsc: SmscSimulator, sink: Sink, make: Any) -> None:
    await make().start()
    await smsc.wait_bound()
    assert await smsc.mobile_originated("48600100200", "STOP") == 0
    assert await smsc.mobile_originated("+48600100201", "Stop, proszę", data_coding=8) == 0
    assert await smsc.mobile_originated("INFO", "hello", ton=5) == 0  # not a number: dropped
    texts = [(e.point_kind, e.address, e.text) for e in sink.events
             if isinstance(e, InboundMessage)]
    assert texts == [("sms", "+48600100200", "STOP"), ("sms", "+48600100201", "Stop, proszę")]


async def test_a_failing_sink_asks_the_smsc_to_deliver_again(
        smsc: SmscSimulator, sink: Sink, make: Any) -> None:
    channel = make()
    receipt = await channel.send(message(), POINT)
    sink.failing = True
    assert await smsc.receipt(receipt.provider_id, "DELIVRD") == 0x64  # ESME_RX_T_APPN
    sink.failing = False
    assert await smsc.receipt(receipt.provider_id, "DELIVRD") == 0
    assert len(sink.events) == 1


async def test_receipts_of_later_parts_only_speak_of_failure(
        smsc: SmscSimulator, sink: Sink, make: Any) -> None:
    receipt = await make().send(message("w" * 200), POINT)
    first, second = (s.message_id or "" for s in smsc.received)
    await smsc.receipt(second, "DELIVRD")
    assert sink.events == []
    await smsc.receipt(first, "DELIVRD")
    await smsc.receipt(second, "UNDELIV")
    assert [(e.provider_id, e.status) for e in sink.events
            if isinstance(e, DeliveryReport)] == [(receipt.provider_id, "delivered"),
                                                  (receipt.provider_id, "failed")]


async def test_it_speaks_tls_to_an_smsc_behind_tls(sink: Sink, channels: list[Any]) -> None:
    certificates = make_certificates()
    async with SmscSimulator(ssl_context=certificates.valid.server_context()) as smsc:
        def channel(**tls: Any) -> SmppChannel:
            config = {"host": "127.0.0.1", "port": smsc.port, "system-id": "dozor",
                      "password": "secret", "source-addr": "+48500100100", "tls": True,
                      "reconnect-delay": 10, **tls}
            made = SmppChannel(SmppConfig.model_validate(config),
                               ChannelContext(Outbound("dozor-test"), sink, timeout=2.0))
            channels.append(made)
            return made

        trusting = channel(**{"tls-ca": certificates.ca_pem})
        assert await trusting.send(message(), POINT)
        assert (smsc.received[0].source_addr, smsc.received[0].source_addr_ton) == (
            "48500100100", 1)
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            await channel().send(message(), POINT)  # the system's CAs know no test CA
        for made in channels:
            await made.close()


@pytest.mark.parametrize("change, field", [
    ({"password": "longer-than-8"}, "password"),
    ({"source-addr": "DozorMonitoring"}, "alphanumeric"),
    ({"system-id": "x" * 16}, "system-id"),
    ({"window": 0}, "window"),
    ({"tls": True, "tls-ca": "/nonexistent/ca.pem"}, "CA"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_config_is_refused_with_the_field_named(change: dict[str, Any], field: str) -> None:
    config = {"host": "smsc.example.net", "system-id": "dozor", "password": "secret",
              "source-addr": "Dozor", **change}
    with pytest.raises(ValidationError, match=field):
        SmppConfig.model_validate(config)


def test_secrets_stay_out_of_the_config_repr() -> None:
    config = SmppConfig.model_validate({"host": "h", "system-id": "s", "password": "pw12",
                                        "source-addr": "123"})
    assert "pw12" not in repr(config)
    assert config.source() == ("123", 1, 1)


@pytest.mark.parametrize("started", [True, False])
async def test_a_closed_channel_sends_nothing(
        smsc: SmscSimulator, make: Any, started: bool) -> None:
    channel = make()
    if started:
        await channel.start()
    await channel.close()
    began = time.monotonic()
    with pytest.raises(DeliveryError, match="closed"):
        await channel.send(message(), POINT)
    assert time.monotonic() - began < 0.5
    assert smsc.received == []
