"""The guard: the last word on whether a message may go out now.

It refuses anything to a point that is not confirmed or has opted out, anything from an
account whose messaging is suspended (but the notice telling its owner why), SMS beyond
the account's credits; and it holds back what would exceed a recipient's hourly cap or a
platform's rate limits (Telegram about 1/s per chat and 30/s per bot, Slack about 1/s per
channel, WhatsApp one message per 6 s to the same person). Held messages to one point come
due together, so the dispatcher sends them as one digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Account emails go to an address rather than a contact point (see ``account_mail``).
ACCOUNT_EVENTS = frozenset({"password_reset", "invitation", "member_added"})
# Notices to the installation's operator, at the addresses its settings name (see
# ``operator_mail``): no organisation's, so no organisation's suspension, restriction
# or cap holds them, and setting the address is the operator's request for them.
OPERATOR_EVENTS = frozenset({"probe_silent", "probe_back"})
# Of those, the ones the recipient asked for: they go even to an address that opted out.
REQUESTED_EVENTS = frozenset({"password_reset"}) | OPERATOR_EVENTS
# Events the owner must hear even when the account's messaging is suspended.
SYSTEM_EVENTS = (frozenset({"point_failing", "suspended", "breach_notice"}) | ACCOUNT_EVENTS
                 | OPERATOR_EVENTS)
# Mail to a status page's subscribers (see ``subscriber_mail``); not system events: a
# suspended account's page mails nobody.
# What goes even to an account that restricted processing: mail its people asked for,
# and the notice of a breach, which the law asks to be sent.
UNRESTRICTED_EVENTS = ACCOUNT_EVENTS | OPERATOR_EVENTS | {"breach_notice"}
SUBSCRIBER_EVENTS = frozenset({"status_confirm", "status_note"})
# Events that may go to a point before it is confirmed: the confirmations themselves,
# and account emails (their address is nobody's contact point).
UNCONFIRMED_EVENTS = (frozenset({"verification", "status_confirm"}) | ACCOUNT_EVENTS
                      | OPERATOR_EVENTS)


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_second`` sustained, bursts of ``burst``."""

    per_second: float
    burst: int = 1


DEFAULT_PER_RECIPIENT: dict[str, Rate] = {
    "telegram": Rate(1.0, 1), "slack": Rate(1.0, 1), "discord": Rate(1.0, 2),
    "whatsapp": Rate(1 / 6, 1), "viber": Rate(1.0, 1), "messenger": Rate(1.0, 1),
}
DEFAULT_PER_PLATFORM: dict[str, Rate] = {"telegram": Rate(30.0, 30)}


@dataclass(frozen=True, slots=True)
class GuardLimits:
    recipient_per_hour: int = 20
    per_recipient: Mapping[str, Rate] = field(default_factory=lambda: DEFAULT_PER_RECIPIENT)
    per_platform: Mapping[str, Rate] = field(default_factory=lambda: DEFAULT_PER_PLATFORM)


@dataclass(frozen=True, slots=True)
class PointView:
    id: int
    org_id: int | None  # None: the installation's operator (``operator_mail``)
    contact_id: int
    kind: str
    address: str
    secret: str | None
    confirmed_at: datetime | None
    opted_out_at: datetime | None
    unsubscribe_token: str
    unsubscribe_path: str = "/unsubscribe/"  # where the token is used, under the public URL


@dataclass(frozen=True, slots=True)
class OrgView:
    id: int
    name: str
    sms_credits: int
    suspended_reason: str | None
    restricted: bool = False  # the account froze processing (privacy.restriction)


# Whose operator notices are (``messages.org_id`` NULL): nobody's account, never
# suspended or restricted, and no SMS credits (they go by email).
INSTALLATION = OrgView(0, "", sms_credits=0, suspended_reason=None)


@dataclass(frozen=True, slots=True)
class Allow:
    pass


@dataclass(frozen=True, slots=True)
class Refuse:
    reason: str


@dataclass(frozen=True, slots=True)
class Defer:
    until: datetime
    reason: str


Verdict = Allow | Refuse | Defer


class RateLimiter:
    """Generic cell rate algorithm: per key, the theoretical arrival time of the next send.

    >>> limiter, t0 = RateLimiter(), datetime(2026, 1, 1)
    >>> limiter.reserve("chat", Rate(1.0), t0)            # free now
    >>> limiter.reserve("chat", Rate(1.0), t0)            # next slot in a second
    datetime.datetime(2026, 1, 1, 0, 0, 1)
    """

    def __init__(self) -> None:
        self._tat: dict[str, datetime] = {}

    def reserve(self, key: str, rate: Rate, now: datetime) -> datetime | None:
        """Take a slot now (returns None) or say when the next one is (taking nothing)."""
        interval = timedelta(seconds=1 / rate.per_second)
        tat = max(self._tat.get(key, now), now)
        if tat - now > interval * (rate.burst - 1):
            return tat - interval * (rate.burst - 1)
        self._tat[key] = tat + interval
        return None

    def forget_before(self, now: datetime) -> None:
        """Drop keys that are free again (keeps memory bounded by recent recipients)."""
        self._tat = {key: tat for key, tat in self._tat.items() if tat > now}


class Guard:
    def __init__(self, limits: GuardLimits | None = None) -> None:
        self.limits = limits or GuardLimits()
        self.rates = RateLimiter()

    def judge(self, event: str, point: PointView | None, org: OrgView, sent_last_hour: int,
              now: datetime) -> Verdict:
        """Whether a message (or a digest) for ``point`` may go now."""
        refusal = self._refusal(event, point, org)
        if refusal is not None:
            return Refuse(refusal)
        assert point is not None
        if sent_last_hour >= self.limits.recipient_per_hour and event not in SYSTEM_EVENTS:
            # Held for the cap's window; what piles up meanwhile goes as one digest.
            return Defer(now + timedelta(hours=1) / self.limits.recipient_per_hour,
                         f"more than {self.limits.recipient_per_hour} messages an hour")
        return self._rate(point, now)

    def _refusal(self, event: str, point: PointView | None, org: OrgView) -> str | None:
        if point is None:
            return "the contact point was deleted"
        if point.opted_out_at is not None and event not in REQUESTED_EVENTS:
            return "the recipient opted out"
        if point.confirmed_at is None and event not in UNCONFIRMED_EVENTS:
            return "the contact point is not confirmed"
        if org.restricted and event not in UNRESTRICTED_EVENTS:
            return "the account restricted processing of its data"
        if org.suspended_reason is not None and event not in SYSTEM_EVENTS:
            return f"messaging is suspended: {org.suspended_reason}"
        if point.kind == "sms" and org.sms_credits <= 0:
            return "no SMS credits left"
        return None

    def _rate(self, point: PointView, now: datetime) -> Verdict:
        platform = self.limits.per_platform.get(point.kind)
        if platform is not None:
            wait = self.rates.reserve(f"platform:{point.kind}", platform, now)
            if wait is not None:
                return Defer(wait, f"{point.kind} rate limit")
        per_recipient = self.limits.per_recipient.get(point.kind)
        if per_recipient is not None:
            wait = self.rates.reserve(f"{point.kind}:{point.address}", per_recipient, now)
            if wait is not None:
                return Defer(wait, f"{point.kind} rate limit for one recipient")
        return Allow()
