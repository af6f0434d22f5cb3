"""The guard's decisions, table-driven: what is refused, what is held back and until when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dozor.notify.guard import (
    INSTALLATION,
    Allow,
    Defer,
    Guard,
    GuardLimits,
    OrgView,
    PointView,
    Refuse,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ORG = OrgView(1, "Acme", sms_credits=10, suspended_reason=None)
RESTRICTED = OrgView(1, "Acme", sms_credits=10, suspended_reason=None, restricted=True)


def point(kind: str = "email", confirmed: bool = True, opted_out: bool = False) -> PointView:
    return PointView(1, 1, 1, kind, "x", None, NOW if confirmed else None,
                     NOW if opted_out else None, "t")


@pytest.mark.parametrize(("event", "target", "org", "verdict"), [
    ("down", point(), ORG, Allow()),
    ("down", None, ORG, Refuse("the contact point was deleted")),
    ("down", point(confirmed=False), ORG, Refuse("the contact point is not confirmed")),
    ("verification", point(confirmed=False), ORG, Allow()),
    ("verification", point(confirmed=False, opted_out=True), ORG,
     Refuse("the recipient opted out")),
    ("down", point(opted_out=True), ORG, Refuse("the recipient opted out")),
    ("down", point(), OrgView(1, "Acme", 10, "bulk"), Refuse("messaging is suspended: bulk")),
    ("suspended", point(), OrgView(1, "Acme", 10, "bulk"), Allow()),
    ("down", point("sms"), OrgView(1, "Acme", 0, None), Refuse("no SMS credits left")),
    ("down", point("email"), OrgView(1, "Acme", 0, None), Allow()),
    # Account emails: to an address nobody confirmed as a point; a suspension does not
    # hold them; an opt-out holds what the person did not ask for.
    ("password_reset", point(confirmed=False), OrgView(1, "Acme", 10, "bulk"), Allow()),
    # An account that restricted processing: no alerts; mail its people asked for, and a
    # breach notice (which also passes a suspension, never an opt-out), still go.
    ("down", point(), RESTRICTED, Refuse("the account restricted processing of its data")),
    ("status_note", point(), RESTRICTED,
     Refuse("the account restricted processing of its data")),
    ("password_reset", point(confirmed=False), RESTRICTED, Allow()),
    ("breach_notice", point(), RESTRICTED, Allow()),
    ("breach_notice", point(), OrgView(1, "Acme", 10, "bulk"), Allow()),
    ("breach_notice", point(opted_out=True), ORG, Refuse("the recipient opted out")),
    ("password_reset", point(confirmed=False, opted_out=True), ORG, Allow()),
    ("invitation", point(confirmed=False), ORG, Allow()),
    ("invitation", point(confirmed=False, opted_out=True), ORG,
     Refuse("the recipient opted out")),
    ("member_added", point(confirmed=False, opted_out=True), ORG,
     Refuse("the recipient opted out")),
    # Operator notices: to the address the operator's own setting names, of nobody's
    # account; an organisation's suspension or restriction is not theirs.
    ("probe_silent", point(confirmed=False, opted_out=True), INSTALLATION, Allow()),
    ("probe_back", point(confirmed=False), OrgView(1, "Acme", 0, "bulk", restricted=True),
     Allow()),
    ("down", point(confirmed=False), INSTALLATION, Refuse("the contact point is not confirmed")),
])
def test_what_may_go_out(event: str, target: PointView | None, org: OrgView,
                         verdict: object) -> None:
    assert Guard().judge(event, target, org, 0, NOW) == verdict


def test_past_the_hourly_cap_a_message_is_held_but_owner_notices_are_not() -> None:
    guard = Guard(GuardLimits(recipient_per_hour=4))
    assert guard.judge("down", point(), ORG, 4, NOW) == Defer(
        NOW + timedelta(minutes=15), "more than 4 messages an hour")
    assert guard.judge("point_failing", point(), ORG, 4, NOW) == Allow()


def test_telegram_gets_one_message_a_second_per_chat_and_thirty_per_bot() -> None:
    guard = Guard()
    chat = point("telegram")
    assert guard.judge("down", chat, ORG, 0, NOW) == Allow()
    assert guard.judge("down", chat, ORG, 0, NOW) == Defer(
        NOW + timedelta(seconds=1), "telegram rate limit for one recipient")
    others = [PointView(i, 1, 1, "telegram", str(i), None, NOW, None, "t") for i in range(40)]
    verdicts = [guard.judge("down", p, ORG, 0, NOW) for p in others]
    assert sum(isinstance(v, Allow) for v in verdicts) == 28  # 30 a second, 2 used above
    assert isinstance(verdicts[-1], Defer) and verdicts[-1].reason == "telegram rate limit"


def test_whatsapp_waits_six_seconds_between_messages_to_one_person() -> None:
    guard = Guard()
    assert guard.judge("down", point("whatsapp"), ORG, 0, NOW) == Allow()
    deferred = guard.judge("down", point("whatsapp"), ORG, 0, NOW + timedelta(seconds=1))
    assert deferred == Defer(NOW + timedelta(seconds=6),
                             "whatsapp rate limit for one recipient")
