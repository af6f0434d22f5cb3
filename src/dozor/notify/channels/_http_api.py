"""Helpers for channels that talk to a provider's JSON-over-HTTP API (Viber, Meta Graph).

Not a channel kind (nothing is registered here). :func:`post_json` makes one bounded
request through the pooled API session and turns every way of not getting an answer
(timeout, refused connection, reset) into a transient :class:`DeliveryError`, so the
channels only decide what the provider's answers mean::

    answer = await post_json(context, url, {"text": "hi"}, {"X-Token": "..."}, "Viber")
    if answer.status == 200 and isinstance(answer.data, dict): ...
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from dozor.notify.channels.base import ChannelContext, DeliveryError, Message
from dozor.outbound import describe_error


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's HTTP answer: ``data`` is the parsed JSON body, or None if it was not
    JSON. ``headers`` look up names case-insensitively (aiohttp's multidict)."""

    status: int
    headers: Mapping[str, str]
    data: Any


async def post_json(context: ChannelContext, url: str, payload: Any,
                    headers: Mapping[str, str], provider: str) -> Answer:
    """POST ``payload`` as JSON within ``context.timeout``; DeliveryError(transient) when
    no answer came. Reasons never contain the URL or headers (they may hold tokens)."""
    session = context.outbound.api_session()
    try:
        async with asyncio.timeout(context.timeout):
            async with session.post(url, json=payload, headers=dict(headers)) as response:
                body = await response.read()
                return Answer(response.status, response.headers, _json(body))
    except TimeoutError:
        raise DeliveryError(f"{provider} did not answer within {context.timeout:g} s",
                            permanent=False) from None
    except (aiohttp.ClientError, OSError) as error:
        raise DeliveryError(f"{provider} unreachable: {describe_error(error)[1]}",
                            permanent=False) from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:  # also UnicodeDecodeError
        return None


def json_object(body: bytes) -> dict[str, Any] | None:
    """A callback body parsed as a JSON object, or None if it is anything else."""
    data = _json(body)
    return data if isinstance(data, dict) else None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if any.

    >>> retry_after({"Retry-After": "30"})
    30.0
    >>> retry_after({"Retry-After": "soon"}) is None
    True
    """
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def http_error(answer: Answer, provider: str) -> DeliveryError:
    """An HTTP status the provider's own error codes did not explain.

    429 and 5xx are transient; 401/403 and other 4xx are the channel's fault (credentials
    or a URL in the config), never the recipient's.
    """
    reason = f"{provider} answered HTTP {answer.status}"
    if answer.status == 429 or answer.status >= 500:
        return DeliveryError(reason, permanent=False, retry_after=retry_after(answer.headers),
                             provider_code=str(answer.status))
    return DeliveryError(reason, permanent=True, channel_fault=True,
                         provider_code=str(answer.status))


def hmac_sha256_hex(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a signature or token a caller sent."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (callbacks are read leniently)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def from_millis(value: Any) -> datetime:
    """A provider's epoch-milliseconds timestamp; now when it is missing or not a number."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value / 1000, UTC)
    return datetime.now(UTC)


def chat_text(message: Message, limit: int) -> str:
    """The subject, the text and the link as one chat message of at most ``limit`` chars;
    a long text is cut, the link is kept whole.

    >>> from dozor.notify.channels.base import Message
    >>> chat_text(Message(1, "k", "down", "Down: shop", "HTTP 503", link="https://d/m/1"), 99)
    'Down: shop\\nHTTP 503\\nhttps://d/m/1'
    >>> chat_text(Message(1, "k", "down", "Down", "x" * 50, link="https://d/m/1"), 24)
    'Down\\nxxxx…\\nhttps://d/m/1'
    """
    head = "\n".join(part for part in (message.subject, message.text) if part)
    tail = f"\n{message.link}" if message.link else ""
    room = limit - len(tail)
    if len(head) > room:
        head = head[: max(room - 1, 0)] + "…"
    return (head + tail)[:limit]
