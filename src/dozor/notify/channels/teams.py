"""Microsoft Teams: alerts posted to a channel as an Adaptive Card, through a Workflows
webhook (or a legacy Office 365 connector's incoming webhook).

The point's address is the webhook URL: a Power Automate "when a Teams webhook request is
received" trigger (``https://....logic.azure.com/workflows/<id>/triggers/manual/paths/
invoke?...&sig=...``) or an old ``https://<tenant>.webhook.office.com/webhookb2/...``. The
URL is the credential, so the channel has no config of its own. Quirks:

- The body is a message with one attachment of content type
  ``application/vnd.microsoft.card.adaptive`` holding the card; Workflows accept nothing
  else (no MessageCard).
- A workflow answers 202 Accepted when the flow starts: the post to the channel happens
  later and nobody tells us how it went, so the receipt is ``delivered=False,
  tracked=False``. A connector answers 200 with the body ``1`` once posted.
- Errors from a workflow are JSON ``{"error": {"code", "message"}}``: 400 (the body does
  not fit the trigger's schema), 401 (a wrong ``sig``), 404 (the flow was deleted), 429
  with Retry-After. A connector answers its errors with HTTP 200 and a sentence such as
  "Microsoft Teams endpoint returned HTTP error 429 ...", read here as that status.
- No idempotency key.
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

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.4"  # the newest version both Workflows and mobile clients render
_CONNECTOR_ERROR = re.compile(r"returned HTTP error (\d{3})")
COLOURS = {"down": "Attention", "up": "Good"}
# Teams refuses posts over about 28 KB; a digest's text is cut well before that.
MAX_TEXT = 20_000


class TeamsConfig(ChannelConfig):
    """Nothing to configure: each point's webhook URL carries its own credential."""


@register
class TeamsChannel:
    """Posts alerts to Teams channels as Adaptive Cards.

    >>> card = payload(Message(1, "k", "down", "api down", "HTTP 503"))
    >>> card["attachments"][0]["content"]["body"][0]["text"]
    'api down'

    ``await channel.send(message, point)`` posts to ``point.address``.
    """

    kind: ClassVar[str] = "teams"
    point_kind: ClassVar[str] = "teams"
    Config: ClassVar[type[ChannelConfig]] = TeamsConfig

    def __init__(self, config: TeamsConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        answer = await post_json(self.context, point.address, encode_json(payload(message)),
                                 users_url=True)
        connector_status = _connector_error(answer)
        if connector_status is not None:
            raise status_error(Answer(connector_status, answer.headers, answer.body),
                               f"Teams answered: {answer.text()[:200]}",
                               provider_code=str(connector_status))
        if answer.status == 202:  # a workflow started; it posts on its own, untracked
            return Receipt(provider_id=None, delivered=False, tracked=False)
        if 200 <= answer.status < 300:
            return Receipt(provider_id=None, delivered=True)
        raise teams_error(answer)


def payload(message: Message) -> dict[str, Any]:
    """A message carrying one Adaptive Card: subject, text and a button to the link."""
    body: list[dict[str, Any]] = [{
        "type": "TextBlock", "text": message.subject, "weight": "Bolder", "size": "Medium",
        "wrap": True, "color": COLOURS.get(message.event, "Default"),
    }]
    if message.text:
        body.append({"type": "TextBlock", "text": clip(message.text, MAX_TEXT), "wrap": True})
    card: dict[str, Any] = {
        "type": "AdaptiveCard", "version": CARD_VERSION, "body": body,
        "msteams": {"width": "Full"},
    }
    if message.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": message.link,
                            "url": message.link}]
    return {"type": "message", "attachments": [
        {"contentType": CARD_TYPE, "contentUrl": None, "content": card}]}


def _connector_error(answer: Answer) -> int | None:
    """The status a legacy connector hid in a 200 answer's text, if it did."""
    if answer.status != 200:
        return None
    found = _CONNECTOR_ERROR.search(answer.text())
    return int(found.group(1)) if found else None


def teams_error(answer: Answer) -> DeliveryError:
    """What a workflow's error answer means (see the module docstring)."""
    body = answer.json()
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    detail = error.get("message") or code
    reason = f"Teams answered HTTP {answer.status}" + (f": {detail}" if detail else "")
    # 413: the card we built is too big; the webhook is not to blame.
    return status_error(answer, reason, provider_code=code or str(answer.status),
                        channel_fault=answer.status == 413)
