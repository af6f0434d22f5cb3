"""Discord: alerts posted to a channel through one of its webhooks ("Execute Webhook").

The point's address is the webhook URL (``https://discord.com/api/webhooks/<id>/<token>``),
made in the channel's settings; the URL is the credential, so the channel has no config
of its own. Quirks:

- The body is ``{"content", "embeds"}``: ``content`` (at most 2000 characters) is what
  notifications show, an embed's ``description`` (4096) holds the text. Both are
  Markdown, so monitor names are escaped; ``allowed_mentions`` is empty so a text with
  ``@everyone`` pings nobody.
- Without ``?wait=true`` Discord answers 204 before the message is saved; with it, 200
  and the message object, whose ``id`` is the receipt's ``provider_id``.
- Errors are JSON ``{"message", "code"}``: 404 code 10015 "Unknown Webhook" (deleted),
  401 code 50027 "Invalid Webhook Token", 400 code 50035 "Invalid Form Body" (our
  payload). 429 carries ``retry_after`` in seconds (a float) in the body and a
  ``Retry-After`` header; webhooks allow about 30 messages a minute per channel.
- No idempotency key and no delivery receipts: saved means ``delivered=True``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from yarl import URL

from dozor.notify.channels._json_post import (
    Answer,
    clip,
    encode_json,
    is_transient_status,
    post_json,
    retry_after,
    status_error,
)
from dozor.notify.channels.base import (
    ChannelConfig,
    ChannelContext,
    ContactPoint,
    DeliveryError,
    Message,
    Receipt,
    register,
)

MAX_CONTENT = 2000
MAX_DESCRIPTION = 4096
COLOURS = {"down": 0xE74C3C, "up": 0x2ECC71}
_MARKDOWN = re.compile(r"([\\*_~`|>#\[\]-])")
_URL = re.compile(r"(https?://\S+)")


class DiscordConfig(ChannelConfig):
    """Nothing to configure: each point's webhook URL carries its own credential."""


@register
class DiscordChannel:
    """Posts alerts to Discord channel webhooks.

    >>> payload(Message(1, "k", "down", "api_v2 down", "HTTP 503"))["content"]
    'api\\\\_v2 down'

    ``await channel.send(message, point)`` posts to ``point.address`` and returns a
    Receipt whose ``provider_id`` is the Discord message id.
    """

    kind: ClassVar[str] = "discord"
    point_kind: ClassVar[str] = "discord"
    Config: ClassVar[type[ChannelConfig]] = DiscordConfig

    def __init__(self, config: DiscordConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        try:
            url = str(URL(point.address).update_query(wait="true"))
        except (ValueError, TypeError):
            raise DeliveryError("not a valid webhook URL", permanent=True) from None
        answer = await post_json(self.context, url, encode_json(payload(message)),
                                 users_url=True)
        if 200 <= answer.status < 300:
            body = answer.json()
            message_id = body.get("id") if isinstance(body, dict) else None
            # Saved is saved, even when the answer is not the message object we expect.
            return Receipt(provider_id=str(message_id) if message_id else None,
                           delivered=True)
        raise discord_error(answer)


def escape(text: str) -> str:
    """Backslash Discord's Markdown characters, so they show as typed; URLs are left
    alone, as a backslash in one would break the link.

    >>> escape("db_main *up*, see https://x.example/a_b")
    'db\\\\_main \\\\*up\\\\*, see https://x.example/a_b'
    """
    parts = _URL.split(text)  # URLs at the odd indexes
    return "".join(part if index % 2 else _MARKDOWN.sub(r"\\\1", part)
                   for index, part in enumerate(parts))


def payload(message: Message) -> dict[str, Any]:
    """The Execute Webhook body: the subject as content, the text and link in an embed."""
    link = f"\n{message.link}" if message.link else ""
    description = (clip(message.text, MAX_DESCRIPTION - len(link), escape=escape)
                   + link).strip()
    body: dict[str, Any] = {
        "content": clip(message.subject, MAX_CONTENT, escape=escape),
        "allowed_mentions": {"parse": []},
    }
    if description:
        embed: dict[str, Any] = {"description": description}
        if message.event in COLOURS:
            embed["color"] = COLOURS[message.event]
        body["embeds"] = [embed]
    return body


def discord_error(answer: Answer) -> DeliveryError:
    """What an error answer means (see the module docstring)."""
    body = answer.json()
    body = body if isinstance(body, dict) else {}
    code = body.get("code")
    detail = body.get("message")
    reason = f"Discord answered HTTP {answer.status}" + (f": {detail}" if detail else "")
    provider_code = str(code) if code is not None else str(answer.status)
    if answer.status == 429:
        wait = body.get("retry_after")
        seconds = float(wait) if isinstance(wait, int | float) else retry_after(answer.headers)
        return DeliveryError(reason, permanent=False, retry_after=seconds,
                             provider_code=provider_code)
    if is_transient_status(answer.status):
        return status_error(answer, reason, provider_code=provider_code)
    # 400 is the body we built; 401, 403 and 404 are a webhook deleted or mistyped.
    return DeliveryError(reason, permanent=True, provider_code=provider_code,
                         channel_fault=answer.status == 400)
