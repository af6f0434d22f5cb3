"""The email channel against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import idna
import pydantic
import pytest

from dozor.notify.channels import build_channel, kinds_for_point
from dozor.notify.channels.base import ChannelContext, ContactPoint, DeliveryError, Message
from dozor.notify.channels.email import EmailChannel, EmailConfig
from dozor.outbound import Outbound
from tests.servers.certs import CertificateSet
from tests.servers.net_fixtures import Serve, certificates, closed_port, serve
from tests.servers.smtp import Received, SmtpServer

__all__ = ["certificates", "closed_port", "serve"]  # fixtures, used by name

SENDER = "alerts@example.com"
UNSUBSCRIBE = "https://status.example.pl/unsubscribe/" + "t0k3n" * 20 + "?point=7"
POINT = ContactPoint(id=7, kind="email", address="ops@example.com")


def make_message(**changes: Any) -> Message:
    fields: dict[str, Any] = {
        "id": 1, "idempotency_key": "message-1", "event": "down",
        "subject": "Awaria: sklep.example.pl nie odpowiada (zażółć gęślą jaźń)",
        "text": "Sklep nie odpowiada od 12:03.\nSzczegóły: https://status.example.pl/m/1",
        "html": "<p>Sklep <b>nie odpowiada</b> od 12:03.</p>",
        "language": "pl", "unsubscribe_url": UNSUBSCRIBE,
    }
    return Message(**(fields | changes))


def make_channel(port: int, timeout: float = 5.0, **config: Any) -> EmailChannel:
    settings = {"host": "127.0.0.1", "port": port, "security": "none",
                "from-address": SENDER, "from-name": "Dozór"} | config
    context = ChannelContext(outbound=Outbound("dozor-test"), timeout=timeout)
    return EmailChannel(EmailConfig.model_validate(settings), context)


def _lines(body: str) -> str:
    """A body as the template wrote it: SMTP's CRLF line ends back to LF, no final one."""
    return body.replace("\r\n", "\n").removesuffix("\n")


@pytest.fixture
async def smtp() -> AsyncIterator[Callable[..., Awaitable[SmtpServer]]]:
    """Start SMTP servers with ``await smtp(security=..., ...)``; all stop with the test."""
    async with AsyncExitStack() as stack:

        async def start(**options: Any) -> SmtpServer:
            return await stack.enter_async_context(SmtpServer(**options))

        yield start


async def test_a_message_arrives_with_text_and_html_and_the_alerting_headers(smtp: Any) -> None:
    server = await smtp()
    receipt = await make_channel(server.port).send(make_message(), POINT)

    [received] = server.received
    mail = received.message
    assert (received.mail_from, received.rcpt_tos) == (SENDER, ["ops@example.com"])
    assert mail["From"].addresses[0].display_name == "Dozór"
    assert mail["From"].addresses[0].addr_spec == SENDER
    assert mail["To"] == "ops@example.com"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert mail["Content-Language"] == "pl"
    assert mail["Date"].datetime.tzinfo is not None
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert _lines(text.get_content()) == make_message().text
    assert html.get_content_type() == "text/html"
    assert _lines(html.get_content()) == make_message().html
    assert receipt.provider_id == mail["Message-ID"]
    assert receipt.tracked is False  # bounces go to a mailbox nobody here reads


async def test_a_polish_subject_is_encoded_and_reads_back_the_same(smtp: Any) -> None:
    server = await smtp()
    await make_channel(server.port).send(make_message(), POINT)

    [received] = server.received
    assert received.raw.isascii()  # nothing needs 8BITMIME or SMTPUTF8
    assert "=?utf-8?" in received.header_line("Subject")
    assert received.message["Subject"] == make_message().subject


async def test_the_one_click_unsubscribe_headers_are_sent_unfolded(smtp: Any) -> None:
    server = await smtp()
    await make_channel(server.port).send(make_message(), POINT)

    [received] = server.received
    # Folded or encoded, a long URL would not be read by mail clients (RFC 8058).
    assert received.header_line("List-Unsubscribe") == f"List-Unsubscribe: <{UNSUBSCRIBE}>"
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_without_html_or_unsubscribe_url_it_is_plain_text_only(smtp: Any) -> None:
    server = await smtp()
    await make_channel(server.port).send(make_message(html=None, unsubscribe_url=None), POINT)

    mail = server.received[0].message
    assert mail.get_content_type() == "text/plain"
    assert _lines(mail.get_content()) == make_message().text
    assert "List-Unsubscribe" not in mail and "List-Unsubscribe-Post" not in mail


async def test_a_retry_carries_the_same_message_id_and_another_message_a_new_one(
    smtp: Any,
) -> None:
    server = await smtp()
    channel = make_channel(server.port)
    first = await channel.send(make_message(), POINT)
    retry = await channel.send(make_message(), POINT)
    other = await channel.send(make_message(id=2, idempotency_key="message-2"), POINT)

    sent = [received.message["Message-ID"] for received in server.received]
    assert sent == [first.provider_id, retry.provider_id, other.provider_id]
    assert first.provider_id == retry.provider_id != other.provider_id
    assert str(first.provider_id).endswith("@example.com>")


async def test_a_subject_that_spans_lines_is_sent_as_one(smtp: Any) -> None:
    server = await smtp()
    await make_channel(server.port).send(make_message(subject="Down:\r\nBcc: x@y.z"), POINT)

    assert server.received[0].message["Subject"] == "Down: Bcc: x@y.z"


async def test_reply_to_is_set_when_configured(smtp: Any) -> None:
    server = await smtp()
    channel = make_channel(server.port, reply_to="oncall@example.com")
    await channel.send(make_message(), POINT)

    assert server.received[0].message["Reply-To"] == "oncall@example.com"


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_it_logs_in_over_tls_trusting_the_configured_ca(
    smtp: Any, certificates: CertificateSet, security: str,
) -> None:
    server = await smtp(security=security, tls=certificates.valid.server_context(),
                        users={"alerts": "s3cret"})
    channel = make_channel(server.port, security=security, ca=certificates.ca_pem,
                           username="alerts", password="s3cret")
    await channel.send(make_message(), POINT)

    [received] = server.received
    assert (received.tls, received.login) == (True, "alerts")


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_wrong_credentials_are_the_channels_permanent_fault(
    smtp: Any, certificates: CertificateSet, security: str,
) -> None:
    server = await smtp(security=security, tls=certificates.valid.server_context(),
                        users={"alerts": "s3cret"})
    channel = make_channel(server.port, security=security, ca=certificates.ca_pem,
                           username="alerts", password="guess")
    with pytest.raises(DeliveryError) as caught:
        await channel.send(make_message(), POINT)

    assert (caught.value.permanent, caught.value.channel_fault) == (True, True)
    assert caught.value.provider_code == "535 5.7.8"
    assert "guess" not in caught.value.reason
    assert server.received == []


async def test_with_verification_off_a_self_signed_certificate_is_accepted(
    smtp: Any, certificates: CertificateSet,
) -> None:
    server = await smtp(security="tls", tls=certificates.self_signed.server_context())
    await make_channel(server.port, security="tls", verify_tls=False).send(
        make_message(), POINT)

    assert server.received[0].tls


async def test_an_idn_domain_goes_out_in_punycode(smtp: Any) -> None:
    server = await smtp()
    point = ContactPoint(id=8, kind="email", address="ops@zażółć.pl")
    await make_channel(server.port).send(make_message(), point)

    expected = "ops@" + idna.encode("zażółć.pl").decode()
    assert server.received[0].rcpt_tos == [expected]
    assert server.received[0].message["To"] == expected


async def test_a_non_ascii_mailbox_is_sent_with_smtputf8_where_offered(smtp: Any) -> None:
    server = await smtp(smtputf8=True)
    point = ContactPoint(id=9, kind="email", address="józef@example.com")
    await make_channel(server.port).send(make_message(), point)

    [received] = server.received
    assert received.rcpt_tos == ["józef@example.com"]
    assert "SMTPUTF8" in received.mail_options


async def test_a_server_that_never_answers_quit_does_not_undo_an_accepted_message(
    smtp: Any,
) -> None:
    server = await smtp(hang_on_quit=True)
    receipt = await make_channel(server.port, timeout=0.3).send(make_message(), POINT)

    assert receipt.provider_id == server.received[0].message["Message-ID"]


async def test_an_address_that_is_not_one_fails_permanently_without_connecting(
    closed_port: int,
) -> None:
    point = ContactPoint(id=10, kind="email", address="not an address")
    with pytest.raises(DeliveryError) as caught:
        await make_channel(closed_port).send(make_message(), point)

    assert (caught.value.permanent, caught.value.channel_fault) == (True, False)


# --- every way a send can fail, and what each means --------------------------------------

REFUSED = "gone@example.com"


@dataclass
class Env:
    smtp: Callable[..., Awaitable[SmtpServer]]
    serve: Serve
    certificates: CertificateSet
    closed_port: int


@dataclass(frozen=True)
class Case:
    server: Callable[[Env], Awaitable[int]]  # starts a server, gives its port
    permanent: bool
    channel_fault: bool
    provider_code: str | None
    reason: str  # a part of the reason
    config: dict[str, Any] = field(default_factory=dict)
    address: str = REFUSED


async def _smtp(env: Env, **options: Any) -> int:
    return (await env.smtp(**options)).port


async def _tls_smtp(env: Env, security: str, cert: str = "valid", **options: Any) -> int:
    context = getattr(env.certificates, cert).server_context()
    return (await env.smtp(security=security, tls=context, **options)).port


async def _stream(env: Env, **options: Any) -> int:
    return (await env.serve(**options)).port


async def _closed(env: Env) -> int:
    return env.closed_port


CASES = {
    "recipient unknown (550)": Case(
        lambda env: _smtp(env, refuse_rcpt={REFUSED: "550 5.1.1 No such user here"}),
        True, False, "550 5.1.1", "550 5.1.1 No such user here"),
    "recipient busy (450)": Case(
        lambda env: _smtp(env, refuse_rcpt={REFUSED: "450 4.2.1 Mailbox busy, try later"}),
        False, False, "450 4.2.1", "Mailbox busy"),
    "mailbox full (552 at RCPT)": Case(
        lambda env: _smtp(env, refuse_rcpt={REFUSED: "552 5.2.2 Mailbox full"}),
        False, False, "552 5.2.2", "Mailbox full"),
    "relay access denied": Case(
        lambda env: _smtp(env, refuse_rcpt={REFUSED: "554 5.7.1 <x>: Relay access denied"}),
        True, True, "554 5.7.1", "Relay access denied"),
    "message rejected after DATA (554)": Case(
        lambda env: _smtp(env, refuse_data={REFUSED: "554 5.7.1 Looks like spam"}),
        True, False, "554 5.7.1", "Looks like spam"),
    "message deferred after DATA (451)": Case(
        lambda env: _smtp(env, refuse_data={REFUSED: "451 4.3.0 Queue full"}),
        False, False, "451 4.3.0", "Queue full"),
    "sender refused (553)": Case(
        lambda env: _smtp(env, refuse_mail={SENDER: "553 5.7.1 Sender not owned by you"}),
        True, True, "553 5.7.1", "Sender not owned"),
    "sender rate-limited (451)": Case(
        lambda env: _smtp(env, refuse_mail={SENDER: "451 4.7.1 Rate limit, slow down"}),
        False, True, "451 4.7.1", "Rate limit"),
    "login required but none configured": Case(
        lambda env: _tls_smtp(env, "starttls", users={"alerts": "s3cret"}),
        True, True, "530 5.7.0", "530", config={"security": "starttls"}),
    "login configured but no AUTH offered": Case(
        lambda env: _smtp(env), True, True, None, "AUTH",
        config={"username": "alerts", "password": "s3cret"}),
    "STARTTLS configured but not offered": Case(
        lambda env: _smtp(env), True, True, None, "STARTTLS", config={"security": "starttls"}),
    "non-ASCII mailbox, no SMTPUTF8": Case(
        lambda env: _smtp(env), True, True, None, "SMTPUTF8", address="józef@example.com"),
    "certificate not trusted (STARTTLS)": Case(
        lambda env: _tls_smtp(env, "starttls", "self_signed"), False, True, None,
        "not trusted", config={"security": "starttls"}),
    "certificate not trusted (TLS)": Case(
        lambda env: _tls_smtp(env, "tls", "self_signed"), False, True, None, "not trusted",
        config={"security": "tls"}),
    "certificate for another host": Case(
        lambda env: _tls_smtp(env, "tls", "wrong_host"), False, True, None, "not trusted",
        config={"security": "tls"}),
    "TLS spoken to a plaintext server": Case(
        lambda env: _smtp(env), False, False, None, "TLS", config={"security": "tls"}),
    "server never answers": Case(
        lambda env: _stream(env), False, False, None, "did not answer within 0.5s"),
    "server hangs up at once": Case(
        lambda env: _stream(env, hang_up=True), False, False, None, "hung up"),
    "no service here (554 greeting)": Case(
        lambda env: _stream(env, banner=b"554 5.3.2 No SMTP service here\r\n"),
        True, True, "554 5.3.2", "No SMTP service"),
    "busy (421 greeting)": Case(
        lambda env: _stream(env, banner=b"421 4.3.2 Too many connections\r\n"),
        False, True, "421 4.3.2", "Too many connections"),
    "not an SMTP server": Case(
        lambda env: _stream(env, banner=b"HTTP/1.1 400 Bad Request\r\n\r\n"),
        False, True, None, "does not speak SMTP"),
    "connection refused": Case(_closed, False, False, None, "connection refused"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_each_failure_says_whether_to_retry_and_whose_fault_it_is(
    case: Case, smtp: Any, serve: Serve, certificates: CertificateSet, closed_port: int,
) -> None:
    port = await case.server(Env(smtp, serve, certificates, closed_port))
    config = {"ca": certificates.ca_pem} | case.config
    point = ContactPoint(id=11, kind="email", address=case.address)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await make_channel(port, timeout=0.5, **config).send(make_message(), point)

    error = caught.value
    assert (error.permanent, error.channel_fault) == (case.permanent, case.channel_fault)
    assert error.provider_code == case.provider_code
    assert case.reason in error.reason
    assert error.retry_after is None  # SMTP gives no retry hints
    assert time.monotonic() - started < 5  # bounded by the context's timeout, give or take


# --- config --------------------------------------------------------------------------------

@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("tls", 465), ("none", 25)])
def test_the_port_defaults_by_security(security: str, port: int) -> None:
    config = EmailConfig.model_validate(
        {"host": "smtp.example.com", "security": security, "from-address": SENDER})
    assert config.effective_port == port


def test_the_channel_is_built_from_kebab_case_config_and_reaches_email_points() -> None:
    context = ChannelContext(outbound=Outbound("dozor-test"))
    channel = build_channel("email", {"host": "smtp.example.com", "from-address": SENDER,
                                      "username": "alerts", "password": "s3cret"}, context)
    assert isinstance(channel, EmailChannel)
    assert "s3cret" not in repr(channel.config)
    assert "email" in kinds_for_point("email")


@pytest.mark.parametrize(("changes", "field_name"), [
    ({"username": "alerts"}, "username and password"),
    ({"password": "s3cret"}, "username and password"),
    ({"from-name": "Dozor\r\nBcc: x@y.z"}, "from-name"),
    ({"from-address": "not-an-address"}, "from-address"),
    ({"host": "smtp://smtp.example.com"}, "host"),
    ({"ca": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"}, "ca"),
    ({"security": "ssl"}, "security"),
])
def test_bad_config_is_refused_naming_the_field(changes: dict[str, Any],
                                                field_name: str) -> None:
    settings = {"host": "smtp.example.com", "from-address": SENDER} | changes
    with pytest.raises(pydantic.ValidationError) as caught:
        EmailConfig.model_validate(settings)
    assert field_name in str(caught.value)


def test_received_messages_record_their_exact_header_lines() -> None:
    raw = b"Subject: a\r\n b\r\nTo: x@y.z\r\n\r\nbody"
    received = Received("a@b.c", ["x@y.z"], [], raw, tls=False, login=None)
    assert received.header_line("subject") == "Subject: a\r\n b"
