"""Webhook: alerts POSTed as signed JSON to a URL the contact runs, as the Standard
Webhooks specification (https://www.standardwebhooks.com, version 1.0.0) says.

The point's address is the URL and ``point.secret`` its signing secret. Each request has:

- a JSON body: ``event``, ``subject``, ``text``, ``link``, ``language``, ``message_id``,
  ``idempotency_key`` and ``sent_at`` (ISO 8601, UTC);
- ``webhook-id``: the message's idempotency key, the same on every retry, so the receiver
  can drop duplicates; ``Idempotency-Key`` repeats it for receivers that look there;
- ``webhook-timestamp``: this attempt's Unix time in seconds (a retry is re-signed);
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``. A
  secret written the spec's way (``whsec_<base64>``) is base64-decoded into the key; any
  other secret is used as its UTF-8 bytes. Without a secret nothing is signed.

Receivers check a request with :func:`verify_signature`. Answers follow the spec's
etiquette: 2xx is accepted (``delivered=True``); redirects are not followed (the owner
should fix the URL); 410 Gone means "stop sending"; 408, 425, 429 and 5xx are retried,
no sooner than Retry-After; any other status is a permanent failure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from dozor.notify.channels._json_post import encode_json, post_json, status_error
from dozor.notify.channels.base import (
    ChannelConfig,
    ChannelContext,
    ContactPoint,
    DeliveryError,
    Message,
    Receipt,
    register,
)

SECRET_PREFIX = "whsec_"
TOLERANCE = 300.0  # seconds a receiver accepts between a timestamp and its own clock


class WebhookConfig(ChannelConfig):
    """Nothing to configure: each point has its own URL and signing secret."""


@register
class WebhookChannel:
    """POSTs alerts as signed JSON to a contact's own URL.

    >>> body = payload(Message(7, "msg-7-a1", "down", "api down", "HTTP 503"), 1700000000)
    >>> body["sent_at"], body["idempotency_key"]
    ('2023-11-14T22:13:20Z', 'msg-7-a1')

    ``await channel.send(message, point)`` posts to ``point.address``, signed with
    ``point.secret``.
    """

    kind: ClassVar[str] = "webhook"
    point_kind: ClassVar[str] = "webhook"
    Config: ClassVar[type[ChannelConfig]] = WebhookConfig

    def __init__(self, config: WebhookConfig, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    async def send(self, message: Message, point: ContactPoint) -> Receipt:
        timestamp = int(time.time())
        body = encode_json(payload(message, timestamp))
        key = message.idempotency_key
        headers = {"webhook-id": key, "webhook-timestamp": str(timestamp),
                   "Idempotency-Key": key}
        if point.secret:
            try:
                headers["webhook-signature"] = sign(point.secret, key, timestamp, body)
            except ValueError as error:
                raise DeliveryError(str(error), permanent=True) from None
        answer = await post_json(self.context, point.address, body, headers=headers,
                                 follow_redirects=False, users_url=True)
        status = answer.status
        if 200 <= status < 300:
            return Receipt(provider_id=None, delivered=True)
        if 300 <= status < 400:
            raise DeliveryError(f"webhook URL redirects (HTTP {status})", permanent=True,
                                provider_code=str(status))
        gone = " Gone: the receiver wants no more messages" if status == 410 else ""
        raise status_error(answer, f"the webhook answered HTTP {status}{gone}",
                           provider_code=str(status))


def payload(message: Message, timestamp: int) -> dict[str, Any]:
    """The JSON body of one attempt."""
    sent_at = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "event": message.event, "subject": message.subject, "text": message.text,
        "link": message.link, "language": message.language, "message_id": message.id,
        "idempotency_key": message.idempotency_key, "sent_at": sent_at,
    }


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: ``whsec_<base64>`` decoded, anything else as UTF-8.

    >>> signing_key("whsec_aGVsbG8=")
    b'hello'
    >>> signing_key("correct horse")
    b'correct horse'
    """
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode()
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("the signing secret after whsec_ is not base64") from None
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one request (the spec's test vector):

    >>> sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
    ...      1614265330, b'{"test": 2432232314}')
    'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
    """
    return "v1," + base64.b64encode(_digest(signing_key(secret), message_id, timestamp,
                                            body)).decode()


def _digest(key: bytes, message_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes,
                     tolerance: float = TOLERANCE, *, now: float | None = None) -> bool:
    """For receivers: True when one of the request's ``v1`` signatures is right and its
    timestamp is within ``tolerance`` seconds of ``now`` (replays are refused).

    ``headers`` may use any case; ``body`` is the raw body, before any JSON parsing.

    >>> secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    >>> body, at = b'{"event":"down"}', 1700000000
    >>> headers = {"Webhook-Id": "msg-1", "Webhook-Timestamp": str(at),
    ...            "Webhook-Signature": sign(secret, "msg-1", at, body)}
    >>> verify_signature(secret, headers, body, now=at + 10)
    True
    >>> verify_signature(secret, headers, body + b" ", now=at + 10)     # altered body
    False
    >>> verify_signature(secret, headers, body, now=at + 3600)          # a replay
    False
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id", "")
    try:
        timestamp = int(lowered.get("webhook-timestamp", ""))
    except ValueError:
        return False
    if not message_id or abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = _digest(signing_key(secret), message_id, timestamp, body)
    return any(_matches(candidate, expected)
               for candidate in lowered.get("webhook-signature", "").split())


def _matches(candidate: str, expected: bytes) -> bool:
    version, _, encoded = candidate.partition(",")
    if version != "v1":
        return False
    try:
        given = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return False
    return hmac.compare_digest(given, expected)
