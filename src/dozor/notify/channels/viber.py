"""Viber: text messages from a Viber bot through the REST Bot API.

Provider quirks:

- Every call is a POST with the bot's token in ``X-Viber-Auth-Token``, and the answer is
  HTTP 200 whatever happened: the JSON ``status`` says (0 is OK, and then
  ``message_token`` is the message's id). Other statuses are documented by number:
  5/6/11 mean this user cannot be reached, 12 is a rate limit, 2/7/8/9/10/15/23/24 are
  the bot's own problems (token, blocked or suspended bot, no webhook, no balance).
- A bot may only write to users who subscribed to it (or opened a conversation), and the
  API refuses to send anything until a webhook is set: :meth:`ViberChannel.set_webhook`
  registers ``context.callback_url``. Viber takes no idempotency key.
- Callbacks are signed: ``X-Viber-Content-Signature`` is the hex HMAC-SHA256 of the raw
  body keyed with the auth token. Events: ``delivered``/``failed`` (receipts by
  ``message_token``), ``unsubscribed`` (the user blocked the bot: an opt-out),
  ``message`` (a user's text: a confirmation code or STOP), ``conversation_started``
  (the user opened the chat, from a deep link ``viber://pa?chatURI=...&context=CODE``
  when ``context`` is set: that code is passed on as an inbound text; without one it
  means nothing yet; the user is not subscribed until they write, so the reply may
  carry ``welcome_text``, the one message Viber allows before that), ``subscribed``
  (carries no code and is no consent: ignored),
  ``seen`` and ``webhook`` (Viber's check of a new webhook: answered 200, no events).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from dozor.notify.channels._http_api import (
    Answer,
    as_dict,
    chat_text,
    from_millis,
    hmac_sha256_hex,
    http_error,
    json_object,
    post_json,
    retry_after,
    same_secret,
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
    OptOut,
    Receipt,
    register,
)
from dozor.notify.points import AddressError, normalise_address

TEXT_LIMIT = 7000  # Viber's maximum for a text message
# The callbacks we act on; ``message`` events always come and cannot be listed.
WEBHOOK_EVENTS = ("delivered", "failed", "subscribed", "unsubscribed", "conversation_started")

# status -> (name, permanent, channel_fault); anything else (a "general error") is transient.
STATUSES: dict[int, tuple[str, bool, bool]] = {
    1: ("invalid webhook URL", True, True),
    2: ("invalid auth token", True, True),
    3: ("bad request data", True, True),
    4: ("missing request data", True, True),
    5: ("the receiver is not a registered Viber user", True, False),
    6: ("the receiver is not subscribed to the bot", True, False),
    7: ("the bot is blocked", True, True),
    8: ("the bot was not found", True, True),
    9: ("the bot is suspended", True, True),
    10: ("no webhook is set for the bot", True, True),
    11: ("the receiver has no device that can receive bot messages", True, False),
    12: ("too many requests", False, False),
    13: ("API version not supported", True, True),
    14: ("incompatible with the receiver's Viber version", True, False),
    15: ("the bot is not authorized", True, True),
    21: ("the receiver's country is not supported", True, False),
    23: ("the bot's free messages are used up", True, True),
    24: ("the bot has no balance left", True, True),
}


class ViberConfig(ChannelConfig):
    auth_token: SecretStr
    sender_name: str = Field(min_length=1, max_length=28)  # shown as the sender
    # Answered to ``conversation_started``: the one message Viber lets a bot send to a
    # user who has not subscribed yet (e.g. "Reply with any text to get alerts here").
    welcome_text: str | None = Field(default=None, min_length=1, max_length=TEXT_LIMIT)
    api_base: str = "https://chatapi.viber.com/pa"


@register
class ViberChannel:
    """Sends alerts as Viber bot messages and turns Viber's webhook events into events.

    >>> from dozor.outbound import Outbound
    >>> config = ViberConfig(auth_token="445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9",
    ...                      sender_name="Dozor")
    >>> channel = ViberChannel(config, ChannelContext(outbound=Outbound("dozor")))
    >>> channel.point_kind
    'viber'

    ``await channel.send(message, point)`` returns a Receipt whose ``provider_id`` is
    Viber's ``message_token``; Viber's ``delivered`` callback later names the same token.
    """

    kind: ClassVar[str] = "viber"
    point_kind: ClassVar[str] = "viber"
    Config: ClassVar[type[ChannelConfig]] = ViberConfig

    def __init__(self, config: ViberConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        payload = {
            "receiver": point.address,
            "min_api_version": 1,
            "sender": {"name": self.config.sender_name},
            "type": "text",
            "text": chat_text(message, TEXT_LIMIT),
        }
        data = await self._call("send_message", payload)
        token = data.get("message_token")
        return Receipt(provider_id=str(token) if token is not None else None)

    async def set_webhook(self, url: str | None = None) -> None:
        """Point the bot's webhook at ``url`` (default ``context.callback_url``).

        Viber calls the URL at once with a ``webhook`` event, so the callback route must
        already answer. Raises DeliveryError (channel_fault) if Viber refuses.
        """
        target = url or self.context.callback_url
        if not target:
            raise DeliveryError("no callback URL to give Viber", permanent=True,
                                channel_fault=True)
        await self._call("set_webhook", {"url": target, "event_types": list(WEBHOOK_EVENTS),
                                         "send_name": False, "send_photo": False})

    async def _call(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        headers = {"X-Viber-Auth-Token": self.config.auth_token.get_secret_value()}
        url = f"{self.config.api_base.rstrip('/')}/{method}"
        answer = await post_json(self.context, url, payload, headers, "Viber")
        if answer.status != 200:
            raise http_error(answer, "Viber")
        data = answer.data
        if not isinstance(data, dict) or not isinstance(data.get("status"), int):
            raise DeliveryError("Viber's answer is not the JSON it documents",
                                permanent=False)
        if data["status"] != 0:
            raise _status_error(data, answer)
        return data

    async def handle_callback(self, request: CallbackRequest) -> CallbackReply:
        if request.method != "POST":
            return CallbackReply(status=405, body="POST only")
        expected = hmac_sha256_hex(self.config.auth_token.get_secret_value(), request.body)
        if not same_secret(request.headers.get("x-viber-content-signature"), expected):
            return CallbackReply(status=403, body="bad signature")
        event = json_object(request.body)
        if event is None:
            return CallbackReply(status=400, body="not a JSON object")
        if event.get("event") == "conversation_started" and self.config.welcome_text:
            welcome = {"sender": {"name": self.config.sender_name}, "type": "text",
                       "text": self.config.welcome_text}
            return CallbackReply(events=_events(event), body=json.dumps(welcome),
                                 content_type="application/json")
        return CallbackReply(events=_events(event))


def _status_error(data: dict[str, Any], answer: Answer) -> DeliveryError:
    status: int = data["status"]
    name, permanent, channel_fault = STATUSES.get(
        status, (str(data.get("status_message") or "general error"), False, False))
    return DeliveryError(f"Viber status {status}: {name}", permanent=permanent,
                         retry_after=None if permanent else retry_after(answer.headers),
                         provider_code=str(status), channel_fault=channel_fault)


def _events(event: dict[str, Any]) -> list[ChannelEvent]:
    """The events one Viber callback carries (at most one; none for what we ignore)."""
    kind, at = event.get("event"), from_millis(event.get("timestamp"))
    token = event.get("message_token")
    if kind in ("delivered", "failed") and isinstance(token, int | str):
        status: Literal["delivered", "failed"] = (
            "delivered" if kind == "delivered" else "failed")
        detail = str(event["desc"]) if kind == "failed" and event.get("desc") else None
        return [DeliveryReport(str(token), status, at, detail)]
    if kind == "unsubscribed":
        user = _user_id(event.get("user_id"))
        return [OptOut("viber", user, at, "unsubscribed from the Viber bot")] if user else []
    if kind == "message":
        sender, body = as_dict(event.get("sender")), as_dict(event.get("message"))
        user, text = _user_id(sender.get("id")), body.get("text")
        if user and body.get("type") == "text" and isinstance(text, str) and text.strip():
            return [InboundMessage("viber", user, text.strip(), at)]
        return []
    if kind == "conversation_started":
        user, context = _user_id(as_dict(event.get("user")).get("id")), event.get("context")
        if user and isinstance(context, str) and context.strip():
            return [InboundMessage("viber", user, context.strip(), at)]
    return []


def _user_id(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return normalise_address("viber", value)
    except AddressError:
        return None
