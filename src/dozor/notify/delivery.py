"""Sending one group of claimed messages (one point's, sent as one message or a digest)
through the channels that reach it, and deciding what happens next. No database here:
the dispatcher persists the :class:`Settled` this returns."""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dozor.notify.channels.base import ContactPoint, DeliveryError, Message, Receipt
from dozor.notify.channelset import ChannelEntry
from dozor.notify.guard import PointView
from dozor.notify.outbox import Claimed
from dozor.notify.templates import render_digest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits between half and all of
    ``base * 2**(n-1)`` (capped), and never less than the provider's Retry-After.

    >>> policy = RetryPolicy(base=timedelta(seconds=10), jitter=0.0)
    >>> [policy.delay(n, None).total_seconds() for n in (1, 2, 3)]
    [10.0, 20.0, 40.0]
    >>> policy.delay(1, 120.0).total_seconds()
    120.0
    """

    base: timedelta = timedelta(seconds=10)
    cap: timedelta = timedelta(minutes=15)
    max_attempts: int = 8
    jitter: float = 0.5  # the share of the delay that is random

    def delay(self, attempt: int, retry_after: float | None) -> timedelta:
        exponential = min(self.cap, self.base * float(2 ** (attempt - 1)))
        delay = exponential * (1 - self.jitter * random.random())
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=retry_after))
        return delay


@dataclass(slots=True)
class Attempt:
    """One try on one channel, for the delivery log."""

    channel: ChannelEntry
    duration_ms: int
    receipt: Receipt | None = None
    error: DeliveryError | None = None


@dataclass(slots=True)
class Settled:
    """What became of a group: accepted, retry at ``retry_at``, or failed."""

    group: Sequence[Claimed]
    point: PointView
    batch_key: str
    attempts: list[Attempt] = field(default_factory=list)
    retry_at: datetime | None = None
    failed: str | None = None  # why, when it failed for good
    blame_point: bool = False  # a permanent error the recipient's address caused

    @property
    def accepted(self) -> Attempt | None:
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and last.receipt is not None else None


@dataclass(frozen=True, slots=True)
class Refused:
    """The guard refused a group: it ends ``refused`` (and may fail over)."""

    group: Sequence[Claimed]
    point: PointView | None
    reason: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """The guard held a group back until ``until`` (caps, rate limits)."""

    group: Sequence[Claimed]
    until: datetime
    reason: str


Outcome = Settled | Refused | Deferred


def compose(group: Sequence[Claimed], point: PointView, public_url: str) -> Message:
    """The message a group becomes: itself, or a digest of all of them."""
    first = group[0]
    base = public_url.rstrip("/")
    # Account emails have no point, so nothing to unsubscribe from.
    unsubscribe = f"{base}{point.unsubscribe_path}{point.unsubscribe_token}" \
        if base and point.unsubscribe_token else None
    link = f"{base}/monitors/{first.monitor_id}" if base and first.monitor_id else None
    if len(group) == 1:
        return Message(id=first.id, idempotency_key=first.idempotency_key, event=first.event,
                       subject=first.subject, text=first.body, language=first.language,
                       link=link, unsubscribe_url=unsubscribe)
    digest = render_digest(first.language, [(m.event, m.subject) for m in group])
    return Message(id=first.id, idempotency_key=batch_key(group), event="digest",
                   subject=digest.subject, text=digest.body, language=first.language,
                   link=base or None, unsubscribe_url=unsubscribe)


def batch_key(group: Sequence[Claimed]) -> str:
    """One key for a digest, the same whenever the same messages are grouped again."""
    if len(group) == 1:
        return group[0].idempotency_key
    keys = "\n".join(sorted(m.idempotency_key for m in group))
    return "digest:" + hashlib.sha256(keys.encode()).hexdigest()[:32]


def contact_point(point: PointView) -> ContactPoint:
    return ContactPoint(id=point.id, kind=point.kind, address=point.address,
                        secret=point.secret)


async def deliver(group: Sequence[Claimed], point: PointView, channels: Sequence[ChannelEntry],
                  message: Message, policy: RetryPolicy, now: datetime) -> Settled:
    """Try the channels in order until one accepts; a channel's own fault moves on to the
    next channel, a recipient's permanent fault or a transient error stops there."""
    settled = Settled(group, point, batch_key(group))
    if not channels:
        return _retry_or_fail(settled, policy, now, None, "no channel can reach "
                              f"{point.kind} points: configure one")
    recipient = contact_point(point)
    for entry in channels:
        started = time.perf_counter()
        try:
            receipt = await _send(entry, message, recipient)
        except DeliveryError as error:
            settled.attempts.append(Attempt(entry, _ms(started), error=error))
            if error.channel_fault:
                continue
            if error.permanent:
                settled.failed, settled.blame_point = error.reason, True
                return settled
            return _retry_or_fail(settled, policy, now, error.retry_after, error.reason)
        settled.attempts.append(Attempt(entry, _ms(started), receipt=receipt))
        return settled
    return _retry_or_fail(settled, policy, now, None, "every channel failed")


async def _send(entry: ChannelEntry, message: Message, recipient: ContactPoint) -> Receipt:
    try:
        return await entry.channel.send(message, recipient)
    except DeliveryError:
        raise
    except Exception as error:  # a channel's bug must not lose the message: retry it
        log.exception("channel %s raised instead of DeliveryError", entry.name)
        raise DeliveryError(f"internal error in channel {entry.name}: {error!r}",
                            permanent=False) from error


def _retry_or_fail(settled: Settled, policy: RetryPolicy, now: datetime,
                   retry_after: float | None, reason: str) -> Settled:
    attempt = max(m.attempts for m in settled.group) + 1
    if attempt >= policy.max_attempts:
        settled.failed = f"gave up after {attempt} attempts: {reason}"
    else:
        settled.retry_at = now + policy.delay(attempt, retry_after)
    return settled


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
