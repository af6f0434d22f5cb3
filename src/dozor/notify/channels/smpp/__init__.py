"""SMS over SMPP 3.4, straight to an SMSC (an operator's, or an aggregator's SMPP port).

One channel instance keeps one transceiver bind: ``start()`` connects and binds, ``close()``
unbinds. A supervisor task reconnects with exponential backoff whenever the link drops.
Messages go as submit_sm with registered_delivery set; the SMSC's deliver_sm brings back
delivery receipts (-> :class:`DeliveryReport`) and texts from phones, such as STOP replies
(-> :class:`InboundMessage`), both to ``context.sink``, and is answered once the sink has
them (a failing sink answers ESME_RX_T_APPN, so the SMSC delivers it again later).

Quirks worth knowing:

- SMPP has nothing like an idempotency key; a submit_sm whose answer was lost with the link
  may have gone out, so a retry can send the text twice (at-least-once, like every channel).
- A long text is several submit_sm (UDH concatenation, see :mod:`.text`), sent one after the
  other so a rejected part stops the rest; the message's provider id is the first part's
  message_id. Receipts for the other parts are folded into the first one's: a failed part
  reports the message failed, a delivered part says nothing new.
- Receipt ids are matched as the SMSC wrote them; an SMSC that answers submit_sm with hex ids
  and writes decimal ones in receipts needs a receipt-side translation this channel lacks.
- ESME_RTHROTTLED and ESME_RMSGQFUL carry no hint of how long to wait: ``throttled-retry-
  after`` stands in for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import ssl
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Annotated, ClassVar

import smpp34
from pydantic import Field, SecretStr, field_validator, model_validator

from dozor.notify.channels.base import (
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
from dozor.notify.channels.smpp import pdu, text
from dozor.notify.channels.smpp.link import BindRejected, LinkClosed, LinkSettings, SmppLink
from dozor.notify.channels.smpp.pdu import Pdu, PduError, Submit
from dozor.notify.points import AddressError, normalise_address
from dozor.outbound import tls_setting

log = logging.getLogger(__name__)

Seconds = Annotated[float, Field(gt=0, le=3600)]


class SmppConfig(ChannelConfig):
    host: str = Field(min_length=1)
    port: int = Field(2775, ge=1, le=65535)
    system_id: str = Field(min_length=1, max_length=15)
    password: SecretStr
    system_type: str = Field("", max_length=12)
    service_type: str = Field("", max_length=5)
    # An alphanumeric sender (up to 11 characters) or a number; TON/NPI follow from it
    # unless given: "+48..." or digits are international/ISDN, letters are alphanumeric.
    source_addr: str = Field(min_length=1, max_length=20)
    source_addr_ton: int | None = Field(None, ge=0, le=6)
    source_addr_npi: int | None = Field(None, ge=0, le=18)
    window: int = Field(10, ge=1, le=1000)  # submit_sm awaiting their answers at once
    enquire_link_interval: Seconds = 30.0
    response_timeout: Seconds = 10.0  # for connect, bind, enquire_link and unbind
    reconnect_delay: Seconds = 1.0  # first wait after a failed or lost bind; doubles
    reconnect_max_delay: Seconds = 120.0
    throttled_retry_after: Seconds = 5.0
    delivery_receipts: bool = True  # registered_delivery on every submit_sm
    tls: bool = False
    tls_verify: bool = True
    tls_ca: str | None = None  # a PEM file's path, or the PEM; None: the system's CAs

    @field_validator("password")
    @classmethod
    def _password_fits(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) > 8:
            raise ValueError("SMPP 3.4 passwords are at most 8 characters")
        return value

    @model_validator(mode="after")
    def _check(self) -> SmppConfig:
        if _is_alphanumeric(self.source_addr) and len(self.source_addr) > 11:
            raise ValueError("an alphanumeric source-addr is at most 11 characters")
        if self.tls:
            tls_setting(self.tls_verify, self.tls_ca)  # ValueError for an unreadable CA
        return self

    def source(self) -> tuple[str, int, int]:
        """source_addr, its TON and NPI."""
        if _is_alphanumeric(self.source_addr):
            address, ton, npi = self.source_addr, 5, 0
        else:
            address, ton, npi = self.source_addr.lstrip("+"), 1, 1
        return (address, ton if self.source_addr_ton is None else self.source_addr_ton,
                npi if self.source_addr_npi is None else self.source_addr_npi)

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        setting = tls_setting(self.tls_verify, self.tls_ca)
        if isinstance(setting, ssl.SSLContext):
            return setting
        context = ssl.create_default_context()
        if not setting:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _is_alphanumeric(address: str) -> bool:
    return not address.lstrip("+").isdigit()


# What a submit_sm_resp status means for the message. Anything not named is transient: an
# SMSC's vendor codes (0x400-0x4FF) are mostly about its own state, and the dispatcher gives
# up after its last attempt anyway.
RECIPIENT_STATUSES = {0x0B, 0x33, 0x50, 0x51, 0x66}  # bad destination address, TON, NPI
CHANNEL_FAULT_STATUSES = {  # our config or our PDU: no recipient is to blame
    0x01, 0x02, 0x03, 0x06, 0x07, 0x0A, 0x0D, 0x0E, 0x0F, 0x15, 0x43, 0x48, 0x49, 0x53,
    0x61, 0x62, 0x63, 0xC0, 0xC1, 0xC2, 0xC3, 0xC4,
}
THROTTLED_STATUSES = {0x14, 0x58}  # ESME_RMSGQFUL, ESME_RTHROTTLED
RINVBNDSTS = 0x04  # "incorrect bind status": the SMSC lost our bind; bind again
# A bind refused for these is worth trying again; any other refusal is the credentials.
TRANSIENT_BIND_STATUSES = {0x05, 0x08, 0x14, 0x58}
PART_MEMORY = 10_000  # ids of non-first parts kept to fold their receipts into the first's


@register
class SmppChannel:
    """SMS through an SMSC over one persistent SMPP transceiver bind.

    >>> from dozor.outbound import Outbound
    >>> config = SmppConfig.model_validate({
    ...     "host": "smpp.example.net", "system-id": "dozor", "password": "s3cret",
    ...     "source-addr": "Dozor"})
    >>> channel = SmppChannel(config, ChannelContext(outbound=Outbound("dozor")))
    >>> config.source()
    ('Dozor', 5, 0)

    Then ``await channel.start()``, ``await channel.send(message, point)`` as often as
    needed (concurrent sends share the window), and ``await channel.close()``.
    """

    kind: ClassVar[str] = "smpp"
    point_kind: ClassVar[str] = "sms"
    Config: ClassVar[type[ChannelConfig]] = SmppConfig

    def __init__(self, config: SmppConfig, context: ChannelContext) -> None:
        self._config = config
        self._context = context
        self._settings = LinkSettings(
            host=config.host, port=config.port, system_id=config.system_id,
            password=config.password.get_secret_value(), system_type=config.system_type,
            ssl=config.ssl_context(), window=config.window,
            enquire_link_interval=config.enquire_link_interval,
            response_timeout=config.response_timeout)
        self._link: SmppLink | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False
        self._fault: DeliveryError | None = None  # why the last bind was refused, if it was
        self._last_error = "not connected yet"
        self._next_attempt: float | None = None  # loop time of the next bind, when waiting
        self._changed = asyncio.Event()
        self._references = itertools.count(random.randrange(256))
        self._first_part: OrderedDict[str, str] = OrderedDict()

    @property
    def bound(self) -> bool:
        return self._link is not None and not self._link.closed.is_set()

    async def start(self) -> None:
        """Connect and bind, waiting (at most ``context.timeout``) for the first attempt.

        It does not raise when the SMSC cannot be reached or refuses the bind: the channel
        keeps trying in the background, and sends say why they cannot go meanwhile."""
        if self._closed:
            return
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._context.timeout):
                while not self.bound and self._next_attempt is None:
                    await self._state_change()

    async def close(self) -> None:
        """Unbind and stop reconnecting."""
        self._closed = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        if self._link is not None:
            await self._link.unbind()
            self._link = None

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        if self._supervisor is None:
            await self.start()
        try:
            encoded = text.encode_text(message.text, next(self._references))
        except ValueError as error:
            raise DeliveryError(str(error), permanent=True) from None
        parts = self._submits(encoded, point.address)
        link: SmppLink | None = None
        ids: list[str] = []
        try:
            async with asyncio.timeout(self._context.timeout):
                link = await self._bound_link()
                for number, part in enumerate(parts, start=1):
                    ids.append(await self._submit(link, part, number, len(parts)))
        except TimeoutError:
            waited_for = "a bind to the SMSC" if link is None else "submit_sm_resp"
            raise DeliveryError(f"no {waited_for} within {self._context.timeout:g}s",
                                permanent=False) from None
        except LinkClosed as error:
            raise DeliveryError(f"the SMPP link went down: {error}", permanent=False) from None
        self._remember_parts(ids)
        return Receipt(provider_id=ids[0] or None, parts=len(ids),
                       tracked=self._config.delivery_receipts)

    def _submits(self, encoded: text.EncodedText, address: str) -> list[Submit]:
        source, ton, npi = self._config.source()
        return [Submit(source_addr=source, source_ton=ton, source_npi=npi,
                       destination_addr=address.lstrip("+"), short_message=part,
                       data_coding=encoded.data_coding, esm_class=encoded.esm_class,
                       registered_delivery=int(self._config.delivery_receipts),
                       service_type=self._config.service_type)
                for part in encoded.parts]

    async def _submit(self, link: SmppLink, part: Submit, number: int, total: int) -> str:
        answer = await link.request(part.encode)
        if answer.command_id == pdu.SUBMIT_SM_RESP and answer.status == pdu.ROK:
            return pdu.read_c_string(answer.body)
        if answer.status == RINVBNDSTS:
            link.abandon("the SMSC says this session is not bound")
        where = f" (part {number} of {total})" if total > 1 else ""
        raise self._submit_error(answer.status, where)

    def _submit_error(self, status: int, where: str) -> DeliveryError:
        name = pdu.status_name(status)
        reason = f"the SMSC refused the message: {name}{where}"
        if status in RECIPIENT_STATUSES:
            return DeliveryError(reason, permanent=True, provider_code=name)
        if status in CHANNEL_FAULT_STATUSES:
            return DeliveryError(reason, permanent=True, provider_code=name, channel_fault=True)
        retry_after = self._config.throttled_retry_after if status in THROTTLED_STATUSES else None
        return DeliveryError(reason, permanent=False, retry_after=retry_after,
                             provider_code=name)

    async def _bound_link(self) -> SmppLink:
        """The bound link, waiting while a bind is under way; fails at once while the
        channel waits to reconnect, or cannot bind at all."""
        while True:
            if self._closed:
                raise DeliveryError("the SMPP channel is closed", permanent=False)
            if self._link is not None and not self._link.closed.is_set():
                return self._link
            if self._fault is not None:
                raise self._fault
            if self._next_attempt is not None:
                wait = max(0.0, self._next_attempt - asyncio.get_running_loop().time())
                raise DeliveryError(f"not bound to the SMSC: {self._last_error}",
                                    permanent=False, retry_after=round(wait, 3) or None)
            await self._state_change()

    async def _state_change(self) -> None:
        await self._changed.wait()

    def _announce(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _supervise(self) -> None:
        delay = self._config.reconnect_delay
        while True:
            self._next_attempt = None
            self._announce()
            link = await self._connect()
            if link is not None:
                delay = self._config.reconnect_delay
                self._link = link
                self._announce()
                await link.closed.wait()
                await link.wait_closed()
                self._last_error = link.reason
                self._link = None
            # Jitter keeps many channels that lost one SMSC from binding again in step.
            pause = delay * random.uniform(0.8, 1.2)
            self._next_attempt = asyncio.get_running_loop().time() + pause
            self._announce()
            await asyncio.sleep(pause)
            delay = min(delay * 2, self._config.reconnect_max_delay)

    async def _connect(self) -> SmppLink | None:
        where = f"{self._config.host}:{self._config.port}"
        try:
            link = await SmppLink.open(self._settings, self._on_deliver)
        except BindRejected as error:
            self._last_error = str(error)
            if error.status not in TRANSIENT_BIND_STATUSES:
                self._fault = DeliveryError(str(error), permanent=True, channel_fault=True,
                                            provider_code=pdu.status_name(error.status))
        except TimeoutError:
            self._last_error = f"no answer from {where} within {self._config.response_timeout:g}s"
        except (OSError, PduError, asyncio.IncompleteReadError) as error:
            self._last_error = f"cannot bind to {where}: {error or type(error).__name__}"
        else:
            self._fault = None
            log.info("SMPP channel bound to %s as %s", where, self._config.system_id)
            return link
        log.warning("SMPP channel: %s", self._last_error)
        return None

    async def _on_deliver(self, message: Pdu) -> int:
        try:
            deliver = pdu.decode_deliver_sm(message)
        except PduError as error:
            log.warning("SMPP channel: %s", error)
            return pdu.RX_P_APPN
        event = self._event(deliver)
        if event is None:
            return pdu.ROK
        try:
            async with asyncio.timeout(self._context.timeout):
                await self._context.sink([event])
        except Exception:
            log.exception("SMPP channel: the sink did not take a deliver_sm; the SMSC retries")
            return pdu.RX_T_APPN
        return pdu.ROK

    def _event(self, deliver: smpp34.DeliverSm) -> ChannelEvent | None:
        now = datetime.now(UTC)
        if text.is_receipt(deliver):
            fields = text.parse_receipt(deliver)
            if fields is None:
                log.warning("SMPP channel: a receipt that names no message: %r",
                            deliver.short_message)
                return None
            first = self._first_part.get(fields.message_id)
            if first is not None and fields.outcome != "failed":
                return None  # the first part's own receipt tells this
            return DeliveryReport(first or fields.message_id, fields.outcome, now,
                                  fields.detail)
        sender = _e164(deliver.source_addr, deliver.source_addr_ton)
        if sender is None:
            log.info("SMPP channel: ignored a text from %r (not a phone number)",
                     deliver.source_addr)
            return None
        return InboundMessage("sms", sender, text.inbound_text(deliver), now)

    def _remember_parts(self, ids: list[str]) -> None:
        for part_id in ids[1:]:
            self._first_part[part_id] = ids[0]
        while len(self._first_part) > PART_MEMORY:
            self._first_part.popitem(last=False)


def _e164(address: str, ton: int) -> str | None:
    """A sender as an E.164 number; None for short codes, names and national numbers (TON 2
    gives no country to put in front)."""
    if ton not in (0, 1):
        return None
    try:
        return normalise_address("sms", "+" + address.lstrip("+"))
    except AddressError:
        return None
