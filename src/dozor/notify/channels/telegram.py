"""Telegram: alerts sent by a bot, and the bot's updates (commands, blocks) heard back.

The provider is the Telegram Bot API (``POST {api_base}/bot<token>/<method>``, JSON in,
JSON out). Its quirks:

- Every answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code",
  "description", "parameters"}``. The description, not the code, tells a blocked bot
  from other 403s; ``parameters.retry_after`` is the flood-control wait and
  ``parameters.migrate_to_chat_id`` says a group became a supergroup with a new id.
  A malformed token is answered 404, a wrong one 401.
- A bot cannot write first. A contact confirms a point by opening the bot's deep link
  (:meth:`TelegramChannel.deep_link`); Telegram then sends us ``/start <token>`` from
  their chat, whose id becomes the point's address.
- There is no idempotency key: a retry after a lost answer may post twice. Accepted by
  Telegram is as far as tracking goes, so a receipt is ``delivered=True``.
- HTML parse mode: only ``<``, ``>`` and ``&`` need escaping; a text Telegram cannot
  parse, or longer than 4096 characters, is refused with 400.
- Updates come to the URL given to ``setWebhook``; its ``secret_token`` comes back in the
  ``X-Telegram-Bot-Api-Secret-Token`` header of each update.
"""

from __future__ import annotations

import hmac
import html
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import SecretStr, field_validator

from dozor.notify.channels._json_post import (
    Answer,
    clip,
    encode_json,
    is_transient_status,
    post_json,
    retry_after,
    utf16_size,
)
from dozor.notify.channels.base import (
    CallbackReply,
    CallbackRequest,
    ChannelConfig,
    ChannelContext,
    ChannelEvent,
    ContactPoint,
    DeliveryError,
    InboundMessage,
    Message,
    OptOut,
    Receipt,
    register,
)

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # characters of a message after HTML parsing
SECRET_HEADER = "x-telegram-bot-api-secret-token"
# Telegram's alphabets: deep-link start parameters and webhook secret tokens.
_START_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
# 400s that are the request's fault (how we rendered it), not the chat's.
_OUR_BAD_REQUESTS = ("can't parse", "too long", "is empty", "must be non-empty")
_BLOCKED = ("blocked", "deactivated", "kicked")


class TelegramConfig(ChannelConfig):
    """A bot made with @BotFather: its token and its username (for deep links)."""

    bot_token: SecretStr
    bot_username: str
    api_base: str = "https://api.telegram.org"
    webhook_secret: SecretStr | None = None  # sent to setWebhook, checked on each update

    @field_validator("bot_username")
    @classmethod
    def _username(cls, value: str) -> str:
        value = value.strip().removeprefix("@")
        if not _USERNAME.fullmatch(value):
            raise ValueError("not a Telegram bot username")
        return value

    @field_validator("api_base")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value


@register
class TelegramChannel:
    """Sends alerts as Telegram messages from a bot; hears commands and blocks back.

    >>> from dozor.outbound import Outbound
    >>> config = TelegramConfig(bot_token="123:abc", bot_username="@dozor_bot")
    >>> channel = TelegramChannel(config, ChannelContext(outbound=Outbound("doc")))
    >>> channel.deep_link("c0nfirm-42")
    'https://t.me/dozor_bot?start=c0nfirm-42'

    ``await channel.send(message, point)`` posts to the chat ``point.address`` and returns
    a Receipt whose ``provider_id`` is Telegram's message id.
    """

    kind: ClassVar[str] = "telegram"
    point_kind: ClassVar[str] = "telegram"
    Config: ClassVar[type[ChannelConfig]] = TelegramConfig

    def __init__(self, config: TelegramConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    def deep_link(self, token: str) -> str:
        """The link that opens the bot and sends it ``/start <token>``."""
        if not _START_TOKEN.fullmatch(token):
            raise ValueError("a start token is 1-64 characters of A-Z, a-z, 0-9, _ and -")
        return f"https://t.me/{self.config.bot_username}?start={token}"

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        result = await self._call("sendMessage", {
            "chat_id": _chat_id(point.address),
            "text": render(message),
            "parse_mode": "HTML",
            # A preview of the monitor's page would bury the alert under a card.
            "link_preview_options": {"is_disabled": True},
        })
        # ok: true means sent; a result without an id is no reason to send it again.
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return Receipt(provider_id=None if message_id is None else str(message_id),
                       delivered=True)

    async def start(self) -> None:
        """Register the webhook when Dozor is reachable; a failure is logged, not raised,
        so alerts still go out while bot updates wait for :meth:`set_webhook` to work."""
        if self.context.callback_url is None:
            return
        try:
            await self.set_webhook()
        except DeliveryError as error:
            log.warning("Telegram bot @%s: setWebhook failed (%s); confirmations and "
                        "blocks will not be heard", self.config.bot_username, error.reason)

    async def set_webhook(self) -> None:
        """Tell Telegram to send the bot's updates to ``context.callback_url``."""
        if self.context.callback_url is None:
            raise ValueError("this channel has no callback URL")
        params: dict[str, Any] = {"url": self.context.callback_url,
                                  "allowed_updates": ["message", "my_chat_member"]}
        if self.config.webhook_secret is not None:
            params["secret_token"] = self.config.webhook_secret.get_secret_value()
        await self._call("setWebhook", params)

    async def handle_callback(self, request: CallbackRequest) -> CallbackReply:
        """An update from Telegram: a private message becomes an InboundMessage, a user
        blocking the bot (or a group removing it) an OptOut; anything else is ignored."""
        if not self._secret_matches(request.headers):
            return CallbackReply(status=403, body="wrong secret token")
        if request.method != "POST":
            return CallbackReply(status=405, body="POST only")
        try:
            update = json.loads(request.body)
        except ValueError:
            return CallbackReply(status=400, body="not JSON")
        if not isinstance(update, dict):
            return CallbackReply(status=400, body="not an Update object")
        return CallbackReply(events=update_events(update))

    def _secret_matches(self, headers: Mapping[str, str]) -> bool:
        if self.config.webhook_secret is None:
            return True
        expected = self.config.webhook_secret.get_secret_value().encode()
        return hmac.compare_digest(headers.get(SECRET_HEADER, "").encode(), expected)

    async def _call(self, method: str, params: Mapping[str, Any]) -> Any:
        """One Bot API method: its ``result``, or a DeliveryError saying why not."""
        token = self.config.bot_token.get_secret_value()
        url = f"{self.config.api_base}/bot{token}/{method}"
        answer = await post_json(self.context, url, encode_json(params))
        body = answer.json()
        if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
            raise _unreadable(answer)
        if body["ok"]:
            return body.get("result")
        raise api_error(body)


def render(message: Message) -> str:
    """Subject in bold, then the text, then the link, in Telegram's HTML; the text is
    shortened to fit one message."""
    subject = html.escape(message.subject, quote=False)
    link = html.escape(message.link, quote=False) if message.link else ""
    room = MAX_TEXT - utf16_size(message.subject) - utf16_size(message.link or "") - 2
    text = clip(message.text, max(room, 0), escape=lambda s: html.escape(s, quote=False),
                size=lambda s: utf16_size(html.unescape(s)))
    title = f"<b>{subject}</b>" if subject.strip() else ""
    return "\n".join(part for part in (title, text, link) if part)


def _chat_id(address: str) -> int | str:
    """Numeric chat ids as numbers; ``@channelname`` as it is."""
    return int(address) if address.lstrip("-").isdigit() else address


def api_error(body: Mapping[str, Any]) -> DeliveryError:
    """What a Bot API error means for the message (see the module docstring)."""
    raw_code, raw_parameters = body.get("error_code"), body.get("parameters")
    code = raw_code if isinstance(raw_code, int) else 0
    parameters: Mapping[str, Any] = raw_parameters if isinstance(raw_parameters, dict) else {}
    reason = f"Telegram: {body.get('description') or f'error {code}'}"
    wait = parameters.get("retry_after")
    if code == 429 or isinstance(wait, int | float):
        return DeliveryError(reason, permanent=False, provider_code="flood",
                             retry_after=float(wait) if isinstance(wait, int | float) else None)
    if is_transient_status(code):
        return DeliveryError(reason, permanent=False, provider_code=str(code))
    return _refusal(code, reason, parameters)


def _refusal(code: int, reason: str, parameters: Mapping[str, Any]) -> DeliveryError:
    """A permanent refusal, and whose fault it is: the description tells more than the
    code (a 403 is a block, or a bot that may not write first; a 400 is a missing chat,
    or a text we rendered wrong)."""
    lowered = reason.lower()
    provider_code, channel_fault = str(code), False
    if code in (401, 404):  # a wrong or malformed bot token
        provider_code, channel_fault = "unauthorized", True
    elif code == 403:
        provider_code = "blocked" if any(word in lowered for word in _BLOCKED) else "forbidden"
    elif "migrate_to_chat_id" in parameters:
        provider_code = "migrated"
        reason = f"{reason} (new chat id {parameters['migrate_to_chat_id']})"
    elif "chat not found" in lowered:
        provider_code = "chat_not_found"
    elif code == 400 and any(words in lowered for words in _OUR_BAD_REQUESTS):
        provider_code, channel_fault = "bad_request", True
    return DeliveryError(reason, permanent=True, provider_code=provider_code,
                         channel_fault=channel_fault)


def _unreadable(answer: Answer) -> DeliveryError:
    """An answer that is not the Bot API's JSON: a proxy's error page, or no Telegram at
    all at ``api_base`` (then it is the channel's configuration that is wrong)."""
    reason = f"Telegram answered HTTP {answer.status} without its JSON"
    if is_transient_status(answer.status) or 200 <= answer.status < 300:
        return DeliveryError(reason, permanent=False, retry_after=retry_after(answer.headers))
    return DeliveryError(reason, permanent=True, channel_fault=True)


def update_events(update: Mapping[str, Any]) -> list[ChannelEvent]:
    """The events in one Telegram Update object."""
    message, member = update.get("message"), update.get("my_chat_member")
    event: ChannelEvent | None = None
    if isinstance(message, dict):
        event = _inbound(message)
    elif isinstance(member, dict):
        event = _opt_out(member)
    return [] if event is None else [event]


def _inbound(message: Mapping[str, Any]) -> InboundMessage | None:
    chat, text = message.get("chat"), message.get("text")
    # Group chatter is not addressed to us; commands come from private chats.
    if not isinstance(chat, dict) or chat.get("type") != "private" or not isinstance(text, str):
        return None
    chat_id = chat.get("id")
    if not isinstance(chat_id, int):
        return None
    return InboundMessage(point_kind="telegram", address=str(chat_id), text=text,
                          at=_moment(message.get("date")))


def _opt_out(member: Mapping[str, Any]) -> OptOut | None:
    chat, new = member.get("chat"), member.get("new_chat_member")
    if not isinstance(chat, dict) or not isinstance(new, dict):
        return None
    chat_id, private = chat.get("id"), chat.get("type") == "private"
    status = new.get("status")
    # A user blocking the bot shows as "kicked"; a group removing it as "kicked" or "left".
    if not isinstance(chat_id, int) or not (status == "kicked" or (status == "left"
                                                                   and not private)):
        return None
    detail = "blocked the bot" if private else "removed the bot from the chat"
    return OptOut(point_kind="telegram", address=str(chat_id),
                  at=_moment(member.get("date")), detail=detail)


def _moment(value: Any) -> datetime:
    if isinstance(value, int) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)
