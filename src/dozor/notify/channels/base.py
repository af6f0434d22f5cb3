"""The interface every channel kind implements, and the registry of channel kinds.

A channel kind is one module in ``dozor.notify.channels`` with a class like::

    @register
    class SmsapiChannel:
        kind: ClassVar[str] = "smsapi"          # the provider or transport
        point_kind: ClassVar[str] = "sms"       # which contact points it can reach
        Config: ClassVar[type[ChannelConfig]] = SmsapiConfig   # secrets as SecretStr

        def __init__(self, config: SmsapiConfig, context: ChannelContext) -> None: ...
        async def send(self, message: Message, point: ContactPoint) -> Receipt: ...

``send`` returns a :class:`Receipt` when the provider accepted the message and raises
:class:`DeliveryError` otherwise, saying whether trying again can help. It never returns
a bool. One configured channel (a row of ``notify_channels``) is one instance, so a
channel may keep a connection (SMPP) or an access token (SMSAPI OAuth) between sends.

Optional, for channels that hear back from their provider:

- ``async def start(self) -> None`` / ``async def close(self) -> None``: a persistent
  session (SMPP bind). Events heard on it (delivery reports, inbound texts) go to
  ``context.sink``.
- ``async def handle_callback(self, request: CallbackRequest) -> CallbackReply``: the
  provider calls ``context.callback_url`` (delivery receipts, inbound messages, bot
  updates); the reply says what to answer and which events it carried.

Core code never branches on a kind's name: it asks the registry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from dozor.outbound import Outbound


class DeliveryError(Exception):
    """A message was not accepted.

    ``permanent``: trying again cannot help (bad number, blocked bot); the point is marked
    failing and its owner told. Otherwise the dispatcher retries with backoff, no sooner
    than ``retry_after`` seconds when the provider said so. ``channel_fault``: the fault
    is the channel's, not the recipient's (bad credentials, no credit left with the
    provider): the point is not blamed and the message tries another channel that
    reaches the same kind of point.

    >>> DeliveryError("HTTP 429", permanent=False, retry_after=3.0).retry_after
    3.0
    """

    def __init__(self, reason: str, *, permanent: bool, retry_after: float | None = None,
                 provider_code: str | None = None, channel_fault: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        self.channel_fault = channel_fault
        self.provider_code = provider_code  # the provider's own error code, for the log


class ChannelConfig(BaseModel):
    """Base of every channel's config: unknown fields are an error, names may be kebab-case.

    Secret fields are ``pydantic.SecretStr``: they never show in logs, reprs or the API.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              alias_generator=lambda name: name.replace("_", "-"))


@dataclass(frozen=True, slots=True)
class Message:
    """One message for one contact point, rendered in the contact's language."""

    id: int
    idempotency_key: str  # stable across retries and crashes; sent where the provider takes one
    event: str  # "down", "up", "verification", "digest", "notice", ...
    subject: str  # a short title: email subject, chat message header
    text: str  # plain text, short enough for one SMS where possible
    html: str | None = None  # email only
    language: str = "en"
    link: str | None = None  # where to read more (the monitor's page), if public_url is set
    unsubscribe_url: str | None = None  # one-click opt-out (email List-Unsubscribe)
    template: str | None = None  # pre-approved template name (WhatsApp)
    template_params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ContactPoint:
    """Where a message goes. ``address`` is normalised by the point kind (E.164 phone,
    lower-case email, chat id, webhook URL)."""

    id: int
    kind: str  # "email", "sms", "telegram", "slack", "webhook", ...
    address: str
    secret: str | None = None  # e.g. a webhook's signing secret, already decrypted
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Receipt:
    """The provider accepted the message."""

    provider_id: str | None  # the provider's message id, to match receipts with
    parts: int = 1  # SMS parts billed
    cost: Decimal | None = None  # in the provider's currency or credits, when it says
    delivered: bool = False  # the provider confirmed delivery already (chat APIs)
    tracked: bool = True  # False: no delivery reports will ever come (Apprise)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A provider's receipt: what became of a message it accepted."""

    provider_id: str
    status: Literal["delivered", "failed", "accepted"]
    at: datetime
    detail: str | None = None  # the provider's status text or error code


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a contact sent us (an SMS reply, a bot command): opt-outs, confirmations."""

    point_kind: str
    address: str  # normalised like ContactPoint.address
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class OptOut:
    """The holder of a point told the provider, not us, that they want nothing more (blocked
    or unsubscribed from a bot, the provider's own STOP handling). Honoured like a STOP."""

    point_kind: str
    address: str
    at: datetime
    detail: str


ChannelEvent = DeliveryReport | InboundMessage | OptOut
EventSink = Callable[[Sequence[ChannelEvent]], Awaitable[None]]


async def _ignore_events(events: Sequence[ChannelEvent]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What a channel may use besides its config."""

    outbound: Outbound  # provider APIs go out through ``outbound.api_session()``
    sink: EventSink = _ignore_events  # receipts and inbound messages heard on a session
    callback_url: str | None = None  # where the provider should call us back, if reachable
    timeout: float = 15.0  # seconds for one send


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """An HTTP request a provider made to this channel's callback URL."""

    method: str
    url: str
    query: Mapping[str, str]
    form: Mapping[str, str]  # parsed application/x-www-form-urlencoded body, else empty
    body: bytes
    headers: Mapping[str, str]  # names lower-case


@dataclass(frozen=True, slots=True)
class CallbackReply:
    """What to answer the provider, and the events its request carried."""

    events: Sequence[ChannelEvent] = ()
    status: int = 200
    body: str = "OK"
    content_type: str = "text/plain"


class Channel(Protocol):
    kind: ClassVar[str]
    point_kind: ClassVar[str]
    Config: ClassVar[type[ChannelConfig]]

    async def send(self, message: Message, point: ContactPoint) -> Receipt: ...


ChannelFactory = Callable[[Any, ChannelContext], Channel]
_REGISTRY: dict[str, type[Any]] = {}
C = TypeVar("C", bound=type[Any])


def register(cls: C) -> C:
    """Class decorator: make a channel kind available under ``cls.kind``."""
    if cls.kind in _REGISTRY:
        raise ValueError(f"channel kind {cls.kind!r} registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


def channel_class(kind: str) -> type[Any]:
    """The class of a channel kind; KeyError names the known kinds."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown channel kind {kind!r} (known: {known})") from None


def channel_kinds() -> list[str]:
    return sorted(_REGISTRY)


def kinds_for_point(point_kind: str) -> list[str]:
    """Channel kinds that can reach a kind of contact point (``sms`` -> smsapi, twilio...)."""
    return sorted(k for k, cls in _REGISTRY.items() if cls.point_kind == point_kind)


def build_channel(kind: str, config: Mapping[str, Any], context: ChannelContext) -> Channel:
    """Validate ``config`` for a kind and make the channel; raises KeyError or
    pydantic.ValidationError (naming the field)."""
    cls = channel_class(kind)
    channel: Channel = cls(cls.Config.model_validate(dict(config)), context)
    return channel
