"""Email over SMTP: one message per connection to a submission relay, with aiosmtplib.

The relay is the account's own (a self-hosted Postfix, a provider's submission port), so
what we learn is only whether the relay took the message: bounces from the recipient's
server come later, to the envelope sender's mailbox, which Dozor does not read. Receipts
say ``tracked=False``.

Quirks and choices:

- A fresh connection per message. Alerts are few (storms are digested upstream); relays
  drop idle connections after a minute or so, and a kept connection would add a
  stale-socket failure mode and serialise concurrent sends.
- ``Message-ID`` is derived from the idempotency key, so a retry after a lost reply
  carries the same id and the duplicate is recognisable (and deduplicated by some
  mailbox providers).
- Bodies are quoted-printable and headers RFC 2047-encoded, so the message is 7-bit clean
  and needs no 8BITMIME; only a non-ASCII local part needs SMTPUTF8. IDN domains go out
  in their ASCII (punycode) form.
- ``Message-ID`` and ``List-Unsubscribe`` are never folded: Python's folder would turn a
  long token into RFC 2047 encoded-words, which mail clients do not decode there.
- SMTP replies map to outcomes by their class: 5xx is permanent, 4xx transient. A refused
  recipient (at RCPT or DATA) is the recipient's problem; a refused sender, failed
  login, missing STARTTLS or "relay access denied" is the channel's (``channel_fault``).
  552 after RCPT ("mailbox full") is transient, as RFC 5321 4.5.3.1.10 asks.
  Timeouts, refused connections and TLS failures are transient; an untrusted
  certificate is also marked as the channel's fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
import socket
import ssl
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import ClassVar, Literal

import aiosmtplib
from email_validator import EmailNotValidError, validate_email
from pydantic import Field, SecretStr, field_validator, model_validator

from dozor.notify.channels.base import (
    ChannelConfig,
    ChannelContext,
    ContactPoint,
    DeliveryError,
    Message,
    Receipt,
    register,
)
from dozor.outbound import tls_setting

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
QUIT_GRACE = 1.0  # seconds to wait for the answer to QUIT once the message was accepted
_ENHANCED_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


class EmailConfig(ChannelConfig):
    """An SMTP relay and the sender Dozor writes as.

    >>> EmailConfig(host="smtp.example.com", username="alerts", password="s3cret",
    ...             from_address="alerts@example.com").effective_port
    587
    """

    host: str = Field(min_length=1)
    port: int | None = Field(None, ge=1, le=65535)  # None: 587, 465 or 25 by security
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = Field(None, min_length=1)
    password: SecretStr | None = None
    from_address: str
    from_name: str | None = None
    reply_to: str | None = None
    verify_tls: bool = True
    ca: str | None = None  # a PEM file's path, or the PEM itself; trusted instead of the system's
    helo_name: str | None = None  # the name we give in EHLO; None: this machine's FQDN

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]

    @field_validator("host", "helo_name")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9.:\[\]_-]+", value.strip()):
            raise ValueError("must be a host name or IP address, without scheme or port")
        return value.strip() if value is not None else None

    @field_validator("from_address", "reply_to")
    @classmethod
    def _check_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        address = _envelope_address(value)
        if not address.isascii():  # would need SMTPUTF8 on every relay for every message
            raise ValueError("the part before @ must be ASCII")
        return address

    @field_validator("from_name")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("must be one line")
        return value

    @field_validator("ca")
    @classmethod
    def _check_ca(cls, value: str | None) -> str | None:
        if value is not None:
            tls_setting(verify=True, ca=value)  # raises ValueError if it is no PEM CA
        return value

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> EmailConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        return self


@register
class EmailChannel:
    """Sends each message as one email through an SMTP relay.

    >>> async def example(context: ChannelContext, message: Message) -> str | None:
    ...     config = EmailConfig(host="smtp.example.com", from_address="alerts@example.com")
    ...     point = ContactPoint(id=1, kind="email", address="ops@example.com")
    ...     receipt = await EmailChannel(config, context).send(message, point)
    ...     return receipt.provider_id  # the Message-ID, e.g. "<3f2a...@example.com>"
    """

    kind: ClassVar[str] = "email"
    point_kind: ClassVar[str] = "email"
    Config: ClassVar[type[ChannelConfig]] = EmailConfig

    def __init__(self, config: EmailConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context
        self._tls: ssl.SSLContext | None = None

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        try:
            recipient = _envelope_address(point.address)
        except ValueError as error:
            raise DeliveryError(f"not a deliverable email address: {error}",
                                permanent=True) from None
        mail = compose(self.config, message, recipient)
        reply = await self._transmit(mail, recipient)
        # The reply often names the relay's queue id: the thread to pull when tracing a loss.
        log.info("email %s for point %d accepted by %s: %s",
                 mail["Message-ID"], point.id, self.config.host, reply)
        return Receipt(provider_id=str(mail["Message-ID"]), tracked=False)

    async def _transmit(self, mail: EmailMessage, recipient: str) -> str:
        utf8 = not recipient.isascii()
        data = mail.as_bytes(policy=UTF8_POLICY if utf8 else POLICY)
        smtp = await self._client()
        try:
            try:
                async with asyncio.timeout(self.context.timeout):
                    await smtp.connect()
                    _, reply = await smtp.sendmail(
                        self.config.from_address, [recipient], data,
                        mail_options=["SMTPUTF8"] if utf8 else None)
            except TimeoutError:  # ours, or aiosmtplib's SMTPTimeoutError
                raise DeliveryError(f"the SMTP server {self._where()} did not answer within "
                                    f"{self.context.timeout:g}s", permanent=False) from None
            except (aiosmtplib.SMTPException, OSError) as error:
                raise self._delivery_error(error) from None
            await _quit_politely(smtp, min(QUIT_GRACE, self.context.timeout))
        finally:
            smtp.close()
        return reply

    async def _client(self) -> aiosmtplib.SMTP:
        config = self.config
        security = config.security
        if security != "none" and self._tls is None:
            # The system CA store is files and milliseconds of CPU: load it off the loop.
            self._tls = await asyncio.to_thread(_client_context, config.verify_tls, config.ca)
        password = config.password.get_secret_value() if config.password else None
        return aiosmtplib.SMTP(
            hostname=config.host, port=config.effective_port,
            use_tls=security == "tls", start_tls=security == "starttls",
            tls_context=self._tls, username=config.username, password=password,
            local_hostname=config.helo_name or await asyncio.to_thread(_this_host),
            timeout=None,  # asyncio.timeout bounds the whole exchange: one timer, not many
        )

    def _where(self) -> str:
        return f"{self.config.host}:{self.config.effective_port}"

    def _delivery_error(self, error: aiosmtplib.SMTPException | OSError) -> DeliveryError:
        if isinstance(error, aiosmtplib.SMTPRecipientsRefused):  # all of our one recipient
            code, text = error.recipients[0].code, error.recipients[0].message
            # 552 after RCPT is "mailbox full": RFC 5321 asks clients to treat it as 452.
            return _refusal(code, text, "the recipient", permanent=_is_5xx(code) and code != 552,
                            channel_fault=_relay_problem(code, text))
        if isinstance(error, aiosmtplib.SMTPDataError):
            return _refusal(error.code, error.message, "the message",
                            channel_fault=_relay_problem(error.code, error.message))
        if isinstance(error, aiosmtplib.SMTPSenderRefused):
            return _refusal(error.code, error.message, f"the sender {error.sender}",
                            channel_fault=True)
        if isinstance(error, aiosmtplib.SMTPAuthenticationError):
            return _refusal(error.code, error.message, "our login", channel_fault=True)
        if isinstance(error, aiosmtplib.SMTPResponseException) and error.code < 0:
            # aiosmtplib's code for a reply that is not SMTP: a wrong host or port.
            return DeliveryError(f"the server at {self._where()} does not speak SMTP: "
                                 f"{' '.join(error.message.split())}",
                                 permanent=False, channel_fault=True)
        if isinstance(error, aiosmtplib.SMTPResponseException):  # greeting, EHLO, STARTTLS
            return _refusal(error.code, error.message, "the session", channel_fault=True)
        if isinstance(error, aiosmtplib.SMTPNotSupported):  # SMTPUTF8 missing
            return DeliveryError(f"the SMTP server cannot take this message: {error.message}",
                                 permanent=True, channel_fault=True)
        return self._connection_error(error)

    def _connection_error(self, error: aiosmtplib.SMTPException | OSError) -> DeliveryError:
        where = self._where()
        cause = _root_cause(error)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return DeliveryError(f"the certificate of {where} is not trusted: "
                                 f"{cause.verify_message}", permanent=False, channel_fault=True)
        if isinstance(cause, ssl.SSLError):
            return DeliveryError(f"TLS with {where} failed: {cause.reason or cause}",
                                 permanent=False)
        if isinstance(cause, ConnectionRefusedError):
            return DeliveryError(f"connection refused by {where}", permanent=False)
        if isinstance(cause, OSError) and not isinstance(cause, aiosmtplib.SMTPException):
            return DeliveryError(f"the connection to {where} failed: {cause.strerror or cause}",
                                 permanent=False)
        if isinstance(error, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError):
            return DeliveryError(f"the SMTP server {where} hung up: {error.message}",
                                 permanent=False)
        # What is left is aiosmtplib finding the server lacks what the config asks for
        # (STARTTLS, AUTH): no retry makes it appear.
        message = getattr(error, "message", str(error))
        return DeliveryError(f"the SMTP server {where} does not fit the channel's settings: "
                             f"{message}", permanent=True, channel_fault=True)


def compose(config: EmailConfig, message: Message, recipient: str) -> EmailMessage:
    """The email for one message: text, plus HTML as an alternative when there is some.

    >>> config = EmailConfig(host="mx", from_address="alerts@example.com")
    >>> message = Message(id=1, idempotency_key="k1", event="down", subject="Down", text="x")
    >>> compose(config, message, "ops@example.com")["Message-ID"]
    '<6ab9f1eb8f7d3388f4f9d586f66e99fd@example.com>'
    """
    mail = EmailMessage()
    mail["Subject"] = " ".join(message.subject.split())  # one line, whatever the template did
    mail["From"] = Address(config.from_name or "", addr_spec=config.from_address)
    mail["To"] = recipient
    if config.reply_to is not None:
        mail["Reply-To"] = config.reply_to
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = message_id(message.idempotency_key, config.from_address)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
    mail["X-Auto-Response-Suppress"] = "OOF, AutoReply"  # the same, for Exchange
    if message.unsubscribe_url is not None:  # RFC 8058 one-click unsubscribe
        mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail.set_content(message.text, cte="quoted-printable")
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html", cte="quoted-printable")
    # After the body: making an alternative moves Content-* headers into the first part.
    mail["Content-Language"] = message.language
    return mail


def message_id(idempotency_key: str, from_address: str) -> str:
    """A Message-ID that is the same on every retry of a message, in the sender's domain."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{from_address.rpartition('@')[2]}>"


class _Policy(EmailPolicy):
    """The SMTP policy, except that single-token headers are never folded (see above)."""

    unfolded: ClassVar[frozenset[str]] = frozenset({"message-id", "list-unsubscribe"})

    def fold_binary(self, name: str, value: str) -> bytes:
        line = f"{name}: {value}"
        if name.lower() in self.unfolded and line.isascii() and len(line) <= 998:
            return (line + self.linesep).encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Policy(linesep="\r\n")
UTF8_POLICY = _Policy(linesep="\r\n", utf8=True)


def _envelope_address(value: str) -> str:
    """The address as it goes on the wire: checked, with an IDN domain in punycode.

    Single-label domains (``alerts@intranet``) pass: a self-hosted relay may serve them.
    """
    try:
        result = validate_email(value.strip(), check_deliverability=False,
                                globally_deliverable=False)
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None
    return f"{result.local_part}@{result.ascii_domain}"


def _refusal(code: int, text: str, what: str, *, channel_fault: bool,
             permanent: bool | None = None) -> DeliveryError:
    """A reply that refused something; 5xx is permanent unless ``permanent`` says."""
    enhanced = _ENHANCED_CODE.search(text)
    return DeliveryError(
        f"the SMTP server refused {what}: {code} {' '.join(text.split())}",
        permanent=_is_5xx(code) if permanent is None else permanent,
        channel_fault=channel_fault,
        provider_code=f"{code} {enhanced.group(1)}" if enhanced else str(code))


def _is_5xx(code: int) -> bool:
    return 500 <= code < 600


def _relay_problem(code: int, text: str) -> bool:
    """A refusal that blames our session, not the recipient: the relay wants a login
    (530) or will not relay for us, whoever the recipient is."""
    return code in (530, 535) or "relay" in text.lower()


def _root_cause(error: BaseException) -> BaseException:
    """The innermost error: aiosmtplib wraps the OSError or SSLError that stopped it."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


async def _quit_politely(smtp: aiosmtplib.SMTP, grace: float) -> None:
    """Say QUIT and wait a moment for the answer. The message is accepted already, so a
    server that never answers must not turn that into a failure (and a duplicate)."""
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
        async with asyncio.timeout(grace):
            await smtp.quit()


@functools.cache
def _this_host() -> str:
    """This machine's FQDN for EHLO, looked up once: it may ask a slow reverse DNS."""
    return socket.getfqdn()


@functools.lru_cache(maxsize=32)
def _client_context(verify: bool, ca: str | None) -> ssl.SSLContext:
    setting = tls_setting(verify, ca)
    if isinstance(setting, ssl.SSLContext):
        return setting
    if setting:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verify-tls off: trust anything
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
