"""What the webhook-style channels (Telegram, Slack, Discord, Teams, webhook) share: one
POST of a JSON body, the reading of the answer, and the usual meaning of HTTP statuses.

Everything that goes wrong before an answer arrives (no answer in time, connection
refused, a name that does not resolve) is transient: the same request may well succeed
later. What an answer means differs too much between providers to judge here, so
:func:`post_json` hands the whole (bounded) answer back and each channel reads it;
:func:`status_error` is the common fallback for statuses a provider does not explain.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from yarl import URL

from dozor.core.types import ErrorCode
from dozor.notify.channels.base import ChannelContext, DeliveryError
from dozor.outbound import describe_error

# Provider answers are a few hundred bytes; a receiver answering more is not read further.
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's HTTP answer: status, headers and the first 64 KiB of the body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", "replace").strip()

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def encode_json(payload: Any) -> bytes:
    """Compact UTF-8 JSON: the exact bytes sent (and, for webhooks, signed)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


async def post_json(context: ChannelContext, url: str, body: bytes, *,
                    headers: Mapping[str, str] | None = None,
                    follow_redirects: bool = True, users_url: bool = False) -> Answer:
    """POST ``body`` (JSON) to ``url`` through the shared API session, within
    ``context.timeout``. Raises a transient DeliveryError when no answer came; error
    messages never contain the URL, which often holds a secret (bot token, webhook key).

    ``users_url``: the URL is a contact point's (a webhook someone gave us), not a
    provider's the operator configured, so it goes through the address policy."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    outbound = context.outbound
    session = outbound.tenant_session() if users_url else outbound.api_session()
    try:
        async with asyncio.timeout(context.timeout):
            async with session.post(_exact(url), data=body, headers=all_headers,
                                    allow_redirects=follow_redirects) as response:
                return Answer(response.status, response.headers, await _read(response))
    except TimeoutError:
        raise DeliveryError(f"no answer within {context.timeout:g} s",
                            permanent=False) from None
    except (ValueError, aiohttp.NonHttpUrlClientError):  # aiohttp.InvalidURL included
        raise DeliveryError("not a valid URL", permanent=True) from None
    except (aiohttp.ClientError, OSError) as error:
        code, reason = describe_error(error)
        # A refused address stays refused: retrying it would only repeat the refusal.
        raise DeliveryError(reason, permanent=code == ErrorCode.BLOCKED) from None


def _exact(url: str) -> URL:
    """The URL as written: webhook URLs carry signatures (``sig=``, ``sp=%2Ftriggers...``)
    that yarl's normalising (``%2F`` to ``/``) could break. A URL with characters that
    must be encoded (spaces, non-ASCII) is left to yarl to encode."""
    well_formed = url.isascii() and not any(char in url for char in ' "<>\\^`{|}')
    return URL(url, encoded=well_formed)


async def _read(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(16384):
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)[:MAX_ANSWER_BYTES]


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), if any.

    >>> retry_after({"Retry-After": "30"})
    30.0
    >>> retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"},
    ...             now=datetime(2015, 10, 21, 7, 28, tzinfo=UTC))
    30.0
    >>> retry_after({"Retry-After": "soon"}) is None
    True
    """
    value = headers.get("Retry-After")
    return None if value is None else seconds_or_date(value, now)


def seconds_or_date(value: str, now: datetime | None = None) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # an HTTP date is always GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def is_transient_status(status: int) -> bool:
    """408, 425, 429 and 5xx say "not now"; other error statuses say "not like this"."""
    return status in (408, 425, 429) or status >= 500


def status_error(answer: Answer, reason: str, *, provider_code: str | None = None,
                 channel_fault: bool = False) -> DeliveryError:
    """The usual meaning of an error status: transient ones wait for Retry-After."""
    if is_transient_status(answer.status):
        return DeliveryError(reason, permanent=False, retry_after=retry_after(answer.headers),
                             provider_code=provider_code, channel_fault=channel_fault)
    return DeliveryError(reason, permanent=True, provider_code=provider_code,
                         channel_fault=channel_fault)


def clip(text: str, limit: int, *, escape: Callable[[str], str] = str,
         size: Callable[[str], int] = len) -> str:
    """``escape(text)``, cut short with "…" so that its ``size`` is at most ``limit``.

    The cut is made in the raw text, so it never splits an escape sequence:

    >>> clip("a < b < c", 12, escape=lambda s: s.replace("<", "&lt;"))
    'a &lt; b…'
    """
    out = escape(text)
    if size(out) <= limit:
        return out
    if size("…") > limit:
        return ""
    fits, too_long = 0, len(text)  # the longest prefix that fits, by bisection
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if size(escape(text[:middle]) + "…") <= limit:
            fits = middle
        else:
            too_long = middle
    return escape(text[:fits].rstrip()) + "…"


def utf16_size(text: str) -> int:
    """Length in UTF-16 code units, as Telegram and Discord count."""
    return len(text.encode("utf-16-le")) // 2
