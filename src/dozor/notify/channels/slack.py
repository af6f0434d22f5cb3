"""Slack: alerts posted to a channel through its incoming webhook.

The point's address is the webhook URL (``https://hooks.slack.com/services/T.../B.../...``),
which the workspace owner makes in a Slack app; the URL is the credential, so the channel
has no config of its own. Quirks:

- The body is ``{"text", "blocks"}``; ``text`` is what notifications show, ``blocks`` what
  the channel shows. Both are mrkdwn, where only ``&``, ``<`` and ``>`` are escaped; a
  header block holds at most 150 characters, a section 3000.
- Success is HTTP 200 with the plain body ``ok``. Errors are a plain code in the body:
  ``invalid_payload`` / ``no_text`` (400, our payload), ``user_not_found`` (400),
  ``invalid_token`` / ``action_prohibited`` (403), ``no_service`` / ``channel_not_found``
  (404: the webhook is gone), ``channel_is_archived`` (410), ``rollup_error`` (500), and
  429 with ``Retry-After`` (about one message per second per webhook).
- No idempotency key and no delivery receipts: "ok" means posted (``delivered=True``).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from dozor.notify.channels._json_post import Answer, clip, encode_json, post_json, status_error
from dozor.notify.channels.base import (
    ChannelConfig,
    ChannelContext,
    ContactPoint,
    DeliveryError,
    Message,
    Receipt,
    register,
)

MAX_HEADER = 150
MAX_SECTION = 3000
_ERROR_CODE = re.compile(r"[a-z_]{2,64}")
# Codes that blame the payload we built, not the webhook's owner.
_OUR_PAYLOAD = frozenset({"invalid_payload", "invalid_blocks", "invalid_blocks_format",
                          "no_text", "missing_text_or_fallback_or_attachments",
                          "too_many_attachments"})


class SlackConfig(ChannelConfig):
    """Nothing to configure: each point's webhook URL carries its own credential."""


@register
class SlackChannel:
    """Posts alerts to Slack incoming webhooks.

    >>> payload(Message(1, "k", "down", "api <down>", "HTTP 503 & slow"))["text"]
    'api &lt;down&gt;\\nHTTP 503 &amp; slow'

    ``await channel.send(message, point)`` posts to ``point.address``.
    """

    kind: ClassVar[str] = "slack"
    point_kind: ClassVar[str] = "slack"
    Config: ClassVar[type[ChannelConfig]] = SlackConfig

    def __init__(self, config: SlackConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        answer = await post_json(self.context, point.address, encode_json(payload(message)),
                                 users_url=True)
        if answer.status == 200 and answer.text() == "ok":
            return Receipt(provider_id=None, delivered=True)
        raise slack_error(answer)


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: only these three characters are special."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(message: Message) -> dict[str, Any]:
    """The webhook body: a plain fallback ``text`` and the blocks people see."""
    blocks: list[dict[str, Any]] = []
    if message.subject.strip():
        blocks.append({"type": "header", "text": {
            "type": "plain_text", "text": clip(message.subject, MAX_HEADER), "emoji": True}})
    link = f"\n<{escape(message.link).replace('|', '%7C')}>" if message.link else ""
    body = clip(message.text, MAX_SECTION - len(link), escape=escape) + link
    if body.strip():
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body.strip()}})
    fallback = "\n".join(part for part in (message.subject, message.text) if part)
    return {"text": clip(fallback, MAX_SECTION, escape=escape), "blocks": blocks}


def slack_error(answer: Answer) -> DeliveryError:
    """What a webhook answer other than ``200 ok`` means (see the module docstring)."""
    text = answer.text()
    code = text if _ERROR_CODE.fullmatch(text) else None
    reason = f"Slack answered HTTP {answer.status}" + (f": {code}" if code else "")
    if 200 <= answer.status < 300:  # not Slack's "ok": a proxy's page, most likely
        return DeliveryError(f"{reason} without 'ok'", permanent=False, provider_code=code)
    return status_error(answer, reason, provider_code=code or str(answer.status),
                        channel_fault=code in _OUR_PAYLOAD)
