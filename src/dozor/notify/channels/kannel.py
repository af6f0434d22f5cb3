"""Kannel: SMS through the ``sendsms`` HTTP interface of a self-run Kannel smsbox.

Quirks worth knowing:

- ``GET /cgi-bin/sendsms`` with ``username``, ``password``, ``to``, ``text``, ``from``,
  ``charset``, ``coding``, ``dlr-mask`` and ``dlr-url``. The text always goes as UTF-8;
  ``coding=2`` makes Kannel send UCS-2 when the text does not fit the GSM alphabet.
- Answers are plain text. Accepted: 202 ``0: Accepted for delivery`` or ``3: Queued for
  later delivery`` (``Sent.`` with immediate-sendsms-reply). Refused: 403 ``Authorization
  failed for sendsms`` or ``Not routable. Do not try again.``; 400 for anything wrong in
  the request, the receiver among it (``Missing receiver number``, ``denied by white-
  and/or black-lists``); 500 ``Sending failed.`` and 503 ``Temporal failure, try again
  later.`` when bearerbox or the SMSC link is down.
- Kannel gives no message id. The dlr-url carries our own (the idempotency key, or
  ``msg-<id>`` when the key is not URL-safe), and that is the receipt's provider id.
  Kannel fills in the escape codes when it calls back: ``%d`` the report type (1
  delivered, 2 failed, 4 buffered, 8 submitted to the SMSC, 16 rejected by it), ``%A``
  the SMSC's report text, ``%T`` the time. A literal ``%`` of our callback URL is written
  ``%%`` so Kannel leaves it alone.
- Inbound texts come through an sms-service whose ``get-url`` is
  :func:`sms_service_get_url` (sender ``%p``, text ``%a``). Give that service
  ``max-messages = 0``, or Kannel texts our answer back to the sender, and set
  ``mo-recode = true`` in the smsbox group so texts arrive as UTF-8.
- No idempotency key: a retry after an answer was lost can send twice. Kannel signs
  nothing either; the secret in the callback URL protects the callbacks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import ClassVar, Literal

import aiohttp
from pydantic import AnyHttpUrl, Field, SecretStr

from dozor.notify.channels.base import (
    CallbackReply,
    CallbackRequest,
    ChannelConfig,
    ChannelContext,
    ChannelEvent,
    ContactPoint,
    DeliveryError,
    DeliveryReport,
    InboundMessage,
    Message,
    Receipt,
    register,
)
from dozor.notify.points import AddressError, normalise_address
from dozor.notify.sms_parts import count_parts
from dozor.outbound import describe_error


class KannelConfig(ChannelConfig):
    sendsms_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:13013/cgi-bin/sendsms")
    username: str = Field(min_length=1)  # a sendsms-user of the smsbox
    password: SecretStr
    sender: str | None = None  # None: the sendsms-user's default-sender or global-sender
    # Which reports Kannel sends: 1 delivered, 2 failed, 4 buffered, 8 submitted, 16
    # rejected by the SMSC; 0 asks for none.
    dlr_mask: int = Field(default=1 | 2 | 8 | 16, ge=0, le=31)


ReportStatus = Literal["delivered", "failed", "accepted"]
DLR_TYPES: dict[int, tuple[ReportStatus, str]] = {
    1: ("delivered", "delivered"), 2: ("failed", "failed"), 4: ("accepted", "buffered"),
    8: ("accepted", "submitted to the SMSC"), 16: ("failed", "rejected by the SMSC"),
}
URL_SAFE_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")
SPLITS = re.compile(r"Message splits: (\d+)")


def dlr_url(callback_url: str, provider_id: str) -> str:
    """The dlr-url for one message: our callback with our id and Kannel's escape codes."""
    base = callback_url.replace("%", "%%")
    return f"{base}{'&' if '?' in base else '?'}id={provider_id}&type=%d&reply=%A&at=%T"


def sms_service_get_url(callback_url: str) -> str:
    """The ``get-url`` of the Kannel sms-service that forwards inbound texts to us.

    >>> sms_service_get_url("https://dozor.example/cb/7")
    'https://dozor.example/cb/7?from=%p&text=%a&at=%T'
    """
    base = callback_url.replace("%", "%%")
    return f"{base}{'&' if '?' in base else '?'}from=%p&text=%a&at=%T"


@register
class KannelChannel:
    """Sends SMS through Kannel's smsbox and reads its DLR and sms-service callbacks.

    >>> from dozor.outbound import Outbound
    >>> config = KannelConfig(username="dozor", password="s3cret", sender="Dozor")
    >>> channel = KannelChannel(config, ChannelContext(Outbound("dozor")))
    >>> channel.provider_id(Message(7, "msg-7", "down", "Down", "api is down"))
    'msg-7'
    """

    kind: ClassVar[str] = "kannel"
    point_kind: ClassVar[str] = "sms"
    Config: ClassVar[type[ChannelConfig]] = KannelConfig

    def __init__(self, config: KannelConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    def provider_id(self, message: Message) -> str:
        """Our id for a message at Kannel: stable across retries, and safe in a URL."""
        key = message.idempotency_key
        return key if URL_SAFE_ID.fullmatch(key) else f"msg-{message.id}"

    def params(self, message: Message, point: ContactPoint) -> dict[str, str]:
        """The query of the sendsms request for one message."""
        ucs2 = count_parts(message.text).encoding == "ucs2"
        params = {"username": self.config.username,
                  "password": self.config.password.get_secret_value(),
                  "to": point.address, "text": message.text, "charset": "UTF-8",
                  "coding": "2" if ucs2 else "0"}
        if self.config.sender:
            params["from"] = self.config.sender
        if self.tracked:
            params["dlr-mask"] = str(self.config.dlr_mask)
            params["dlr-url"] = dlr_url(str(self.context.callback_url),
                                        self.provider_id(message))
        return params

    @property
    def tracked(self) -> bool:
        """Kannel reports only when it has somewhere to report to, and was asked to."""
        return bool(self.context.callback_url) and self.config.dlr_mask > 0

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        status, body = await self._get(self.params(message, point))
        if 200 <= status < 300:
            splits = SPLITS.search(body)
            return Receipt(provider_id=self.provider_id(message),
                           parts=int(splits[1]) if splits else count_parts(message.text).parts,
                           tracked=self.tracked)
        raise _refusal(status, body.strip())

    async def _get(self, params: dict[str, str]) -> tuple[int, str]:
        session = self.context.outbound.api_session()
        try:
            async with asyncio.timeout(self.context.timeout):
                async with session.get(str(self.config.sendsms_url), params=params) as response:
                    return response.status, (await response.read()).decode("utf-8", "replace")
        except TimeoutError:
            raise DeliveryError(f"Kannel did not answer within {self.context.timeout:g} s",
                                permanent=False) from None
        except (aiohttp.ClientError, OSError) as error:
            raise DeliveryError(f"Kannel: {describe_error(error)[1]}", permanent=False) from None

    async def handle_callback(self, request: CallbackRequest) -> CallbackReply:
        """Delivery reports (from a dlr-url) and inbound texts (from the sms-service)."""
        params = {**request.query, **request.form}
        if "type" in params:
            return _report(params)
        if "from" in params and "text" in params:
            # An empty answer: with max-messages = 0 Kannel texts nothing back.
            return CallbackReply(events=_inbound(params), body="")
        return CallbackReply(status=400, body="not a Kannel delivery report or inbound SMS")


def _refusal(status: int, said: str) -> DeliveryError:
    reason = f"Kannel: {said or f'HTTP {status}'}"
    code = str(status)
    if status == 400 and ("receiver" in said.lower() or "black-list" in said.lower()):
        return DeliveryError(reason, permanent=True, provider_code=code)
    if status >= 500:
        return DeliveryError(reason, permanent=False, provider_code=code)
    if "Not routable" in said:
        # No SMSC of this Kannel takes the number; another channel may reach it.
        reason = "Kannel has no route to this number (Not routable)"
    # Credentials, routing, sender or a field Kannel rejects: this channel's set-up.
    return DeliveryError(reason, permanent=False, channel_fault=True, provider_code=code)


def _report(params: Mapping[str, str]) -> CallbackReply:
    provider_id = params.get("id", "").strip()
    try:
        kind = int(params["type"])
    except ValueError:
        kind = 0
    if not provider_id or not kind:
        return CallbackReply(status=400, body="a Kannel report needs id and type")
    if kind not in DLR_TYPES:
        return CallbackReply()  # a combination or a type from a newer Kannel: nothing known
    status, name = DLR_TYPES[kind]
    reply = params.get("reply", "").strip()
    detail = f"{name}: {reply}" if reply else name
    return CallbackReply(events=[DeliveryReport(provider_id, status,
                                                _timestamp(params.get("at", "")), detail)])


def _inbound(params: Mapping[str, str]) -> list[ChannelEvent]:
    sender = params["from"].strip()
    if sender.startswith("00"):
        sender = "+" + sender[2:]
    try:
        address = normalise_address("sms", sender if sender.startswith("+") else "+" + sender)
    except AddressError:
        return []  # an alphanumeric sender, or a national number Kannel did not widen
    return [InboundMessage("sms", address, params["text"], _timestamp(params.get("at", "")))]


def _timestamp(value: str) -> datetime:
    return datetime.fromtimestamp(int(value), UTC) if value.isdigit() else datetime.now(UTC)
