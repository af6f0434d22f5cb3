"""Facebook Messenger: messages from a Facebook Page through the Graph API's Send API.

Provider quirks:

- ``POST {api_base}/{graph_version}/me/messages`` with the Page access token. A Page may
  write freely only within 24 hours of the person's last message; alerts come at any
  time, so they go as ``messaging_type: MESSAGE_TAG`` with ``tag: ACCOUNT_UPDATE``
  ("a non-recurring change to the person's account", the tag Meta allows for account
  and alert updates; CONFIRMED_EVENT_UPDATE, POST_PURCHASE_UPDATE and HUMAN_AGENT are the
  others, and ``message_tag: null`` sends plain UPDATE messages, inside the window only).
  Meta moves such updates to templated "utility messages"; the tag is what works for
  free text. Tags may not carry promotions, and misuse gets a Page restricted.
- A person is known only by their page-scoped id (PSID), which Meta gives us when they
  write to the Page or open ``m.me/<page>?ref=<code>``: that ``ref`` arrives as a
  ``referral`` (or with the Get Started ``postback``, or an ``optin``) and is passed on
  as an inbound text, like a typed confirmation code.
- Errors are Graph errors (see ``_meta_graph``): 551 (this person isn't available),
  100/2018001 (no such user) and 10/2018278, 10/2018108 (outside the allowed window, the
  tag was refused for this person) are the recipient's; 190 (token), 10 and 200-299
  (permissions), 368 (Page blocked) the channel's; 1/2/1200 and the rate limits
  (4, 17, 32, 613) transient. The Send API takes no idempotency key.
- Webhook (set up in the app dashboard with ``verify_token`` and ``context.callback_url``,
  subscribed to ``messages``, ``message_deliveries``, ``messaging_referrals``,
  ``messaging_postbacks``, ``messaging_optins``): ``message_deliveries`` list the
  delivered ``mids``; echoes of the Page's own messages are ignored.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from dozor.notify.channels._http_api import as_dict, as_list, chat_text, from_millis
from dozor.notify.channels._meta_graph import (
    CHANNEL,
    GRAPH_API,
    GRAPH_VERSION,
    RECIPIENT,
    RETRY,
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
    DeliveryReport,
    InboundMessage,
    Message,
    Receipt,
    register,
)
from dozor.notify.points import AddressError, normalise_address

TEXT_LIMIT = 2000  # the Send API's maximum for a text message
MESSENGER_CODES: Codes = {
    551: RECIPIENT,  # this person isn't available right now (blocked the Page, left)
    (100, 2018001): RECIPIENT,  # no matching user found
    (10, 2018278): RECIPIENT,  # outside the allowed window: the tag was refused
    (10, 2018108): RECIPIENT,  # outside the allowed window
    (10, 2018065): CHANNEL,  # outside the window, and the Page lacks the permission
    1200: RETRY,  # temporary send message failure
}
MessageTag = Literal["ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE",
                     "HUMAN_AGENT"]


class MessengerConfig(ChannelConfig):
    page_access_token: SecretStr
    app_secret: SecretStr  # checks X-Hub-Signature-256 on webhook calls
    verify_token: SecretStr  # the token typed into the app dashboard's webhook setup
    graph_version: str = Field(default=GRAPH_VERSION, pattern=r"^v\d+\.\d+$")
    message_tag: MessageTag | None = "ACCOUNT_UPDATE"
    api_base: str = GRAPH_API


@register
class MessengerChannel:
    """Sends alerts as Messenger messages from a Page; reads the Page's webhook.

    >>> from dozor.outbound import Outbound
    >>> config = MessengerConfig(page_access_token="EAAG...", app_secret="a1b2",
    ...                          verify_token="pick-one")
    >>> channel = MessengerChannel(config, ChannelContext(outbound=Outbound("dozor")))
    >>> channel.point_kind, config.message_tag
    ('messenger', 'ACCOUNT_UPDATE')

    ``await channel.send(message, point)`` returns a Receipt whose ``provider_id`` is the
    ``message_id`` (mid) that ``message_deliveries`` webhook events name later.
    """

    kind: ClassVar[str] = "messenger"
    point_kind: ClassVar[str] = "messenger"
    Config: ClassVar[type[ChannelConfig]] = MessengerConfig

    def __init__(self, config: MessengerConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        payload: dict[str, Any] = {
            "recipient": {"id": point.address},
            "message": {"text": chat_text(message, TEXT_LIMIT)},
        }
        if self.config.message_tag:
            payload.update(messaging_type="MESSAGE_TAG", tag=self.config.message_tag)
        else:
            payload["messaging_type"] = "UPDATE"
        url = (f"{self.config.api_base.rstrip('/')}/{self.config.graph_version}"
               "/me/messages")
        data = await graph_post(self.context, url,
                                self.config.page_access_token.get_secret_value(), payload,
                                "Messenger", MESSENGER_CODES)
        mid = data.get("message_id")
        return Receipt(provider_id=mid if isinstance(mid, str) else None)

    async def handle_callback(self, request: CallbackRequest) -> CallbackReply:
        body = verified_body(request, self.config.app_secret.get_secret_value(),
                             self.config.verify_token.get_secret_value())
        if isinstance(body, CallbackReply):
            return body
        if body.get("object") != "page":
            return CallbackReply()  # another product's webhook: nothing for us
        return CallbackReply(events=[
            event
            for entry in as_list(body.get("entry"))
            for item in as_list(as_dict(entry).get("messaging"))
            for event in _events(as_dict(item))
        ])


def _events(item: dict[str, Any]) -> list[ChannelEvent]:
    """The events in one ``messaging`` item: receipts, a text, or a deep-link ref."""
    delivery = as_dict(item.get("delivery"))
    if delivery:
        at = from_millis(delivery.get("watermark") or item.get("timestamp"))
        return [DeliveryReport(mid, "delivered", at)
                for mid in as_list(delivery.get("mids")) if isinstance(mid, str) and mid]
    psid = _psid(as_dict(item.get("sender")).get("id"))
    text = _text(item)
    if psid is None or text is None:
        return []
    return [InboundMessage("messenger", psid, text, from_millis(item.get("timestamp")))]


def _text(item: dict[str, Any]) -> str | None:
    """What the person said: a message's text, else the ``ref`` of a deep link."""
    message = as_dict(item.get("message"))
    if message.get("is_echo"):  # the Page's own message, echoed back
        return None
    candidates = [
        message.get("text"),
        as_dict(item.get("referral")).get("ref"),
        as_dict(as_dict(item.get("postback")).get("referral")).get("ref"),
        as_dict(item.get("optin")).get("ref"),
    ]
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _psid(value: Any) -> str | None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        return normalise_address("messenger", str(value))
    except AddressError:
        return None
