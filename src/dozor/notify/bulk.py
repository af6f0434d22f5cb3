"""Bulk-pattern detection: signs that an account uses Dozor to message people at large.

Alerts only ever go to an account's own confirmed contacts, so abuse has to start with
contact points: many new recipients at once (above all from a new account), enumerated
phone numbers (+48600100200, ...201, ...202), or confirmation codes nobody asked for, which
shows as many failures and opt-outs. Any of these suspends the account's messaging; its
owner is told why (that notice is the one message a suspended account still sends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.notify import outbox
from dozor.notify.outbox import NewMessage
from dozor.notify.templates import render
from dozor.store import notify_tables as n
from dozor.store import tables as t


@dataclass(frozen=True, slots=True)
class BulkLimits:
    new_account_age: timedelta = timedelta(days=7)
    new_account_points_per_day: int = 20
    points_per_day: int = 100
    enumerated_run: int = 5
    failure_sample: int = 20
    failure_share: float = 0.5
    opt_out_sample: int = 5
    opt_out_share: float = 0.2


LIMITS = BulkLimits()


def longest_run(numbers: list[str]) -> int:
    """The longest run of consecutive numbers (an enumeration), in any order.

    >>> longest_run(["+48600100202", "+48600100200", "+48600100201", "+44700900111"])
    3
    """
    values = sorted({int(number.lstrip("+")) for number in numbers if number[1:].isdigit()})
    best = run = 1 if values else 0
    for previous, current in zip(values, values[1:], strict=False):
        run = run + 1 if current == previous + 1 else 1
        best = max(best, run)
    return best


async def assess(connection: AsyncConnection, org_id: int, now: datetime,
                 limits: BulkLimits = LIMITS) -> str | None:
    """Why this account's messaging should be suspended, or None."""
    p, o = n.contact_points.c, t.organizations.c
    created = (await connection.execute(select(o.created_at).where(o.id == org_id))).scalar()
    recent = (await connection.execute(
        select(p.kind, p.address).where(p.org_id == org_id,
                                         p.created_at >= now - timedelta(days=1)))).all()
    is_new = created is not None and now - created < limits.new_account_age
    if is_new and len(recent) > limits.new_account_points_per_day:
        return f"{len(recent)} contact points added in a day by a new account"
    if len(recent) > limits.points_per_day:
        return f"{len(recent)} contact points added in a day"
    phones = [address for kind, address in recent if kind in ("sms", "whatsapp")]
    if (run := longest_run(phones)) >= limits.enumerated_run:
        return f"{run} consecutive phone numbers added (an enumeration)"
    return await _bad_outcomes(connection, org_id, now, limits)


async def _bad_outcomes(connection: AsyncConnection, org_id: int, now: datetime,
                        limits: BulkLimits) -> str | None:
    m, c = n.messages.c, n.consents.c
    week = now - timedelta(days=7)
    finished: dict[str, int] = dict((await connection.execute(
        select(m.status, func.count()).where(m.org_id == org_id, m.created_at >= week,
                                             m.status.in_(("delivered", "failed")))
        .group_by(m.status))).all())
    failed, total = finished.get("failed", 0), sum(finished.values())
    if total >= limits.failure_sample and failed / total > limits.failure_share:
        return f"{failed} of {total} messages failed this week"
    withdrawn = (await connection.execute(
        select(func.count()).where(c.org_id == org_id, c.action == "withdrawn",
                                   c.at >= week))).scalar() or 0
    points = (await connection.execute(select(func.count()).where(
        n.contact_points.c.org_id == org_id))).scalar() or 0
    if withdrawn >= limits.opt_out_sample and withdrawn > limits.opt_out_share * max(points, 1):
        return f"{withdrawn} recipients opted out this week"
    return None


async def check_and_suspend(connection: AsyncConnection, org_id: int, now: datetime) -> str | None:
    """Assess the account; suspend its messaging (once) if it looks like bulk."""
    reason = await assess(connection, org_id, now)
    if reason is not None:
        await suspend(connection, org_id, reason, now)
    return reason


async def review_active(connection: AsyncConnection, now: datetime) -> list[str]:
    """Assess every account that sent something in the last day and is not suspended yet
    (failure and opt-out rates change as messages go out). Returns the reasons found."""
    m, o = n.messages.c, t.organizations.c
    org_ids = (await connection.execute(
        select(m.org_id).join(t.organizations, o.id == m.org_id)
        .where(m.created_at >= now - timedelta(days=1), o.messaging_suspended_at.is_(None))
        .distinct())).scalars()
    reasons = []
    for org_id in list(org_ids):
        if (reason := await check_and_suspend(connection, org_id, now)) is not None:
            reasons.append(reason)
    return reasons


async def owner_points(connection: AsyncConnection, org_id: int
                       ) -> list[tuple[int, int, str]]:
    """(point, contact, language) of every confirmed, not opted-out point of the
    organisation's owner contacts: where notices about the account itself go."""
    c, p = n.contacts.c, n.contact_points.c
    rows = (await connection.execute(
        select(p.id, p.contact_id, c.language).join(n.contacts, c.id == p.contact_id)
        .where(c.org_id == org_id, c.is_owner, p.confirmed_at.is_not(None),
               p.opted_out_at.is_(None)).order_by(p.id))).all()
    return [(row.id, row.contact_id, row.language) for row in rows]


async def suspend(connection: AsyncConnection, org_id: int, reason: str, now: datetime) -> None:
    o = t.organizations.c
    changed = await connection.execute(
        update(t.organizations).where(o.id == org_id, o.messaging_suspended_at.is_(None))
        .values(messaging_suspended_at=now, messaging_suspended_reason=reason))
    if not changed.rowcount:
        return
    org_name = (await connection.execute(select(o.name).where(o.id == org_id))).scalar_one()
    messages = []
    for point_id, contact_id, language in await owner_points(connection, org_id):
        text = render("suspended", language, org=org_name, reason=reason)
        messages.append(NewMessage(org_id, contact_id, point_id, "suspended",
                                   f"suspended:{org_id}:{now:%Y%m%d%H%M%S}:{point_id}",
                                   text.subject, text.body, language, now))
    await outbox.enqueue(connection, messages)


async def lift_suspension(connection: AsyncConnection, org_id: int) -> None:
    await connection.execute(update(t.organizations).where(t.organizations.c.id == org_id)
                             .values(messaging_suspended_at=None,
                                     messaging_suspended_reason=None))
