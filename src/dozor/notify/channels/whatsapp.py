"""WhatsApp: pre-approved template messages through Meta's WhatsApp Business Cloud API.

Provider quirks:

- ``POST {api_base}/{graph_version}/{phone_number_id}/messages`` with a bearer token.
  Outside the 24-hour window after a person's last message only templates approved by
  Meta may be sent, and alerts come at any time, so this channel sends templates only,
  never free text. The template is ``message.template`` with ``message.template_params``
  when the message names one; otherwise ``templates[message.event]`` from the config,
  whose body must have two variables: ``{{1}}`` the subject and ``{{2}}`` the text. An
  event with no template is a permanent channel fault (another channel may carry it).
- Template parameters may not contain newlines, tabs or runs of spaces (Meta rejects
  them), so whitespace is collapsed; an empty one becomes "-".
- The template's language is ``language`` from the config when set, else the message's
  own language (the contact's); a template must be approved in that language.
- Errors are Graph errors (see ``_meta_graph``) with WhatsApp's codes: 131026
  (undeliverable), 131047 (re-engagement), 131021, 131030, 131050 are the recipient's;
  130429 (throughput) and 131056 (pair rate limit), 131000, 131016, 131049, 133004 are
  transient; 190 (token), 132000-132016 (template missing, paused, parameters wrong),
  131031, 131042, 133010 (account locked, payment, number not registered) the
  channel's. The Cloud API takes no idempotency key.
- Webhook (configured in the app dashboard with ``verify_token`` and
  ``context.callback_url``, field ``messages``): ``statuses`` (sent -> accepted,
  delivered and read -> delivered, failed -> failed with the error) and ``messages``
  (texts, and the text of a template's quick-reply button) from ``from``, a phone number
  without the ``+``, normalised to E.164.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from dozor.notify.channels._http_api import as_dict, as_list
from dozor.notify.channels._meta_graph import (
    CHANNEL,
    GRAPH_API,
    GRAPH_VERSION,
    RECIPIENT,
    RETRY,
    RETRY_ELSEWHERE,
    Codes,
    graph_post,
    verified_body,
)
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

PARAM_LIMIT = 1000  # a template's whole body may not exceed 1024 characters
WHATSAPP_CODES: Codes = {
    131021: RECIPIENT,  # the recipient is the sender
    131026: RECIPIENT,  # undeliverable: not on WhatsApp, old app, terms not accepted
    131030: RECIPIENT,  # not in a test number's allowed list
    131047: RECIPIENT,  # re-engagement: more than 24 h since the person last wrote
    131050: RECIPIENT,  # the person stopped marketing messages
    130429: RETRY,  # Cloud API throughput reached
    131056: RETRY,  # pair rate limit: too many messages to this number
    131000: RETRY,  # something went wrong
    131016: RETRY,  # service unavailable
    131049: RETRY,  # Meta chose not to deliver now
    133004: RETRY,  # server temporarily unavailable
    131048: RETRY_ELSEWHERE,  # spam rate limit on our number
    131057: RETRY_ELSEWHERE,  # business account in maintenance mode
    **dict.fromkeys((131005, 131008, 131009, 131031, 131037, 131042, 131045, 131051, 132000,
                     132001, 132005, 132007, 132012, 132015, 132016, 133010), CHANNEL),
}
STATUSES: dict[str, Literal["accepted", "delivered", "failed"]] = {
    "sent": "accepted", "delivered": "delivered", "read": "delivered", "failed": "failed",
}


class WhatsappConfig(ChannelConfig):
    access_token: SecretStr  # a system user's token with whatsapp_business_messaging
    app_secret: SecretStr  # checks X-Hub-Signature-256 on webhook calls
    verify_token: SecretStr  # the token typed into the app dashboard's webhook setup
    phone_number_id: str = Field(pattern=r"^\d{1,32}$")  # the sender's id, not the number
    graph_version: str = Field(default=GRAPH_VERSION, pattern=r"^v\d+\.\d+$")
    language: str | None = None  # a template language code ("en_US"); None: the message's
    templates: dict[str, str] = {}  # event ("down", "up", ...) -> approved template name
    api_base: str = GRAPH_API


@register
class WhatsappChannel:
    """Sends alerts as approved WhatsApp templates; reads the Cloud API's webhook.

    >>> from dozor.outbound import Outbound
    >>> config = WhatsappConfig(access_token="EAAG...", app_secret="a1b2",
    ...                         verify_token="pick-one", phone_number_id="106540352242922",
    ...                         templates={"down": "monitor_down", "up": "monitor_up"})
    >>> channel = WhatsappChannel(config, ChannelContext(outbound=Outbound("dozor")))
    >>> channel.template_for(Message(1, "k", "down", "Down: shop", "HTTP 503"))
    ('monitor_down', ('Down: shop', 'HTTP 503'))

    ``await channel.send(message, point)`` returns a Receipt whose ``provider_id`` is the
    ``wamid`` that the webhook's ``statuses`` name later.
    """

    kind: ClassVar[str] = "whatsapp"
    point_kind: ClassVar[str] = "whatsapp"
    Config: ClassVar[type[ChannelConfig]] = WhatsappConfig

    def __init__(self, config: WhatsappConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    def template_for(self, message: Message) -> tuple[str, tuple[str, ...]]:
        """The template's name and body parameters; DeliveryError if there is none."""
        if message.template:
            return message.template, message.template_params
        name = self.config.templates.get(message.event)
        if name is None:
            raise DeliveryError(
                f"no WhatsApp template for {message.event!r} messages (set templates."
                f"{message.event}): WhatsApp takes only pre-approved templates",
                permanent=True, channel_fault=True)
        return name, (message.subject, message.text)

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        name, params = self.template_for(message)
        template: dict[str, Any] = {
            "name": name, "language": {"code": self.config.language or message.language},
        }
        if params:
            template["components"] = [{"type": "body", "parameters": [
                {"type": "text", "text": _param(value)} for value in params]}]
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": point.address, "type": "template", "template": template}
        url = (f"{self.config.api_base.rstrip('/')}/{self.config.graph_version}"
               f"/{self.config.phone_number_id}/messages")
        data = await graph_post(self.context, url, self.config.access_token.get_secret_value(),
                                payload, "WhatsApp", WHATSAPP_CODES)
        sent = as_dict(next(iter(as_list(data.get("messages"))), None))
        wamid = sent.get("id")
        return Receipt(provider_id=wamid if isinstance(wamid, str) else None)

    async def handle_callback(self, request: CallbackRequest) -> CallbackReply:
        body = verified_body(request, self.config.app_secret.get_secret_value(),
                             self.config.verify_token.get_secret_value())
        if isinstance(body, CallbackReply):
            return body
        if body.get("object") != "whatsapp_business_account":
            return CallbackReply()  # another product's webhook: nothing for us
        values = [as_dict(as_dict(change).get("value"))
                  for entry in as_list(body.get("entry"))
                  for change in as_list(as_dict(entry).get("changes"))]
        events: list[ChannelEvent] = []
        for value in values:
            events += [r for s in as_list(value.get("statuses")) if (r := _report(as_dict(s)))]
            events += [i for m in as_list(value.get("messages")) if (i := _inbound(as_dict(m)))]
        return CallbackReply(events=events)


def _param(value: str) -> str:
    """A template parameter Meta accepts: one line, no tabs, not empty, not too long."""
    text = " ".join(value.split()) or "-"
    return text if len(text) <= PARAM_LIMIT else text[: PARAM_LIMIT - 1] + "…"


def _report(status: dict[str, Any]) -> DeliveryReport | None:
    wamid, kind = status.get("id"), STATUSES.get(str(status.get("status")))
    if not isinstance(wamid, str) or not wamid or kind is None:
        return None
    detail = "read" if status.get("status") == "read" else None
    error = as_dict(next(iter(as_list(status.get("errors"))), None))
    if error:
        detail = f"{error.get('code')}: {error.get('title') or error.get('message')}"
    return DeliveryReport(wamid, kind, _from_seconds(status.get("timestamp")), detail)


def _inbound(message: dict[str, Any]) -> InboundMessage | None:
    kind = message.get("type")
    text = (as_dict(message.get("text")).get("body") if kind == "text"
            else as_dict(message.get("button")).get("text") if kind == "button" else None)
    sender = message.get("from")
    if not isinstance(text, str) or not text.strip() or not isinstance(sender, str):
        return None
    try:
        address = normalise_address("whatsapp", "+" + sender.lstrip("+"))
    except AddressError:
        return None
    return InboundMessage("whatsapp", address, text.strip(),
                          _from_seconds(message.get("timestamp")))


def _from_seconds(value: Any) -> datetime:
    """The webhook's timestamps: epoch seconds as a string; now if missing or garbled."""
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)
