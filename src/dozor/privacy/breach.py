"""Breach notification: telling each affected account's owners, and keeping the record.

The operator records a breach once (when it was detected, and a summary written for the
people affected); every affected organisation's owner contacts get the notice on their
confirmed points, through the outbox like any message (it passes a suspension or a
restriction of the account, never an opt-out). Each organisation gets a row in
``breach_notices`` saying when its notices were queued, how many, and whether that was
within 72 hours of detection; its audit log records it too. An organisation whose owners
have no confirmed point gets no message, and the report says so: the operator must reach
them another way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.notify import outbox
from dozor.notify.bulk import owner_points
from dozor.notify.outbox import NewMessage
from dozor.notify.templates import render
from dozor.privacy import audit
from dozor.store import notify_tables as n
from dozor.store import privacy_tables as pv
from dozor.store import tables as t

DEADLINE = timedelta(hours=72)
MAX_SUMMARY = 4_000  # characters: a notice, not a newsletter


@dataclass
class BreachReport:
    breach_id: int
    late: bool  # queued more than 72 hours after detection
    queued: dict[int, int] = field(default_factory=dict)  # organisation -> notices
    unreachable: list[int] = field(default_factory=list)  # organisations without a channel


async def notify(conn: AsyncConnection, org_ids: Sequence[int], *, detected_at: datetime,
                 summary: str, now: datetime) -> BreachReport:
    """Record the breach and queue its notice to the owners of each organisation, in the
    caller's transaction."""
    summary = summary.strip()
    if not summary:
        raise ValueError("summary: say what happened and what it means for them")
    if len(summary) > MAX_SUMMARY:
        raise ValueError(f"summary: at most {MAX_SUMMARY} characters")
    if detected_at > now:
        raise ValueError("detected: in the future")
    o = t.organizations.c
    orgs = (await conn.execute(select(o.id, o.name).where(o.id.in_(org_ids)))).all()
    missing = sorted(set(org_ids) - {row.id for row in orgs})
    if missing:
        raise ValueError(f"orgs: no organisation {', '.join(map(str, missing))}")
    breach_id = int((await conn.execute(insert(pv.breaches).values(
        detected_at=detected_at, summary=summary, created_at=now)
        .returning(pv.breaches.c.id))).scalar_one())
    late = now - detected_at > DEADLINE
    report = BreachReport(breach_id, late)
    detected = f"{detected_at:%Y-%m-%d %H:%M}"
    for org in orgs:
        messages = []
        for point_id, contact_id, language in await owner_points(conn, org.id):
            text = render("breach_notice", language, org=org.name, detected=detected,
                          summary=summary)
            messages.append(NewMessage(org.id, contact_id, point_id, "breach_notice",
                                       f"breach:{breach_id}:{org.id}:{point_id}",
                                       text.subject, text.body, language, now))
        await outbox.enqueue(conn, messages)
        await conn.execute(insert(pv.breach_notices).values(
            breach_id=breach_id, org_id=org.id, queued_at=now, messages=len(messages),
            within_deadline=not late))
        await audit.record(conn, "breach_notified", org_id=org.id, user_id=None,
                           target=f"breach {breach_id}",
                           detail={"detected_at": detected_at.isoformat(),
                                   "notices": len(messages), "within_72_hours": not late})
        report.queued[org.id] = len(messages)
        if not messages:
            report.unreachable.append(org.id)
    return report


async def status(conn: AsyncConnection, breach_id: int | None = None) -> Sequence[Any]:
    """Per breach and organisation: when notices were queued, whether within 72 hours,
    and how many of them the providers accepted or delivered so far."""
    b, bn, m = pv.breaches.c, pv.breach_notices.c, n.messages.c
    sent = (select(func.count()).where(
        m.org_id == bn.org_id, m.event == "breach_notice",
        m.idempotency_key.like(literal("breach:", String) + cast(bn.breach_id, String)
                               + literal(":%", String)),
        m.status.in_(("accepted", "delivered"))).scalar_subquery())
    query = (select(b.id, b.detected_at, bn.org_id, bn.queued_at, bn.messages,
                    bn.within_deadline, sent.label("sent"))
             .join(pv.breach_notices, bn.breach_id == b.id).order_by(b.id, bn.org_id))
    if breach_id is not None:
        query = query.where(b.id == breach_id)
    return (await conn.execute(query)).all()
