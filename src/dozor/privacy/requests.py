"""Erasure requests: recorded when asked, answered within five business days (done at
once here: the deadline is what the log is judged against), and kept afterwards with ids
and dates only, as the proof that each was answered.

An account's request freezes the account at once (``restriction``); the erasure itself
runs in the background (``erasure.run_open``), again after a restart if it was cut
short.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.privacy import restriction
from dozor.store import privacy_tables as pv

log = logging.getLogger(__name__)
DEADLINE_DAYS = 5  # business days


def business_days_after(moment: datetime, days: int = DEADLINE_DAYS) -> datetime:
    """The same time of day ``days`` business days (Monday to Friday) later.

    >>> from datetime import UTC
    >>> business_days_after(datetime(2026, 12, 3, 9, tzinfo=UTC))  # a Thursday
    datetime.datetime(2026, 12, 10, 9, 0, tzinfo=datetime.timezone.utc)
    >>> business_days_after(datetime(2026, 12, 5, 9, tzinfo=UTC)).strftime("%a %d")  # Saturday
    'Fri 11'
    """
    left = days
    while left:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            left -= 1
    return moment


async def request_erasure(conn: AsyncConnection, org_id: int, contact_id: int | None = None,
                          *, source: str, requested_by: int | None, now: datetime
                          ) -> Row[Any]:
    """Record a request (or return the open one for the same account or contact). An
    account's request also restricts its processing at once."""
    found = await _open_request(conn, org_id, contact_id)
    if found is not None:
        return found
    await conn.execute(insert(pv.erasure_requests).values(
        org_id=org_id, contact_id=contact_id, source=source, requested_by=requested_by,
        requested_at=now, due_by=business_days_after(now)))
    if contact_id is None:
        await restriction.restrict(conn, org_id, now=now)
    created = await _open_request(conn, org_id, contact_id)
    assert created is not None
    log.info("erasure request %s: organisation %s%s, due by %s", created.id, org_id,
             f" contact {contact_id}" if contact_id else "", created.due_by)
    return created


async def _open_request(conn: AsyncConnection, org_id: int,
                        contact_id: int | None) -> Row[Any] | None:
    r = pv.erasure_requests.c
    same_contact = r.contact_id.is_(None) if contact_id is None else r.contact_id == contact_id
    return (await conn.execute(select(pv.erasure_requests).where(
        r.org_id == org_id, same_contact, r.done_at.is_(None)).order_by(r.id))).first()


async def mark_done(conn: AsyncConnection, org_id: int, contact_id: int | None, *,
                    now: datetime, reason: str, request_id: int | None,
                    detail: dict[str, Any]) -> int:
    """Close the request (the one given, or the open one for the same subject), or record
    an erasure nobody asked for (retention) as a request done at once."""
    r = pv.erasure_requests.c
    if request_id is None:
        found = await _open_request(conn, org_id, contact_id)
        request_id = found.id if found is not None else None
    if request_id is not None:
        await conn.execute(update(pv.erasure_requests).where(r.id == request_id)
                           .values(done_at=now, detail=detail))
        return request_id
    result = await conn.execute(insert(pv.erasure_requests).values(
        org_id=org_id, contact_id=contact_id, source=reason, requested_at=now,
        due_by=business_days_after(now), done_at=now, detail=detail).returning(r.id))
    return int(result.scalar_one())


async def open_requests(conn: AsyncConnection) -> Sequence[Row[Any]]:
    r = pv.erasure_requests.c
    return (await conn.execute(select(pv.erasure_requests).where(r.done_at.is_(None))
                               .order_by(r.due_by, r.id))).all()
