"""Account emails: password reset tokens, invitations, notices to new members.

They take the path every message takes (the outbox, the dispatcher, the guard, the
configured email channel, the delivery log), but they go to an address rather than to a
contact point: the person asked for them, or is being asked to join, so no confirmed point
exists or is needed. They carry no unsubscribe link and pass a suspension of the account's
messaging; an invitation is still refused to an address that opted out of Dozor.

    >>> async def example(connection: AsyncConnection, now: datetime) -> None:
    ...     await send(connection, 1, "ala@example.com", "password_reset", "en", now,
    ...                email="ala@example.com", token="dze_...", minutes=60, link="")
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.notify import outbox
from dozor.notify.guard import ACCOUNT_EVENTS, PointView
from dozor.notify.outbox import Claimed, NewMessage
from dozor.notify.templates import language_of, render
from dozor.privacy import keys
from dozor.store import notify_tables as n


async def send(connection: AsyncConnection, org_id: int, address: str, event: str,
               language: str, now: datetime, **values: Any) -> None:
    """Queue an account email (in the caller's transaction) rendered from its template."""
    assert event in ACCOUNT_EVENTS, event
    text = render(event, language, **values)
    await outbox.enqueue(connection, [NewMessage(
        org_id, None, None, event, f"{event}:{secrets.token_hex(16)}", text.subject,
        text.body, language_of(language), now, to_address=address)])


def recipient(message: Claimed, opted_out_at: datetime | None) -> PointView:
    """Where an account email (or an operator notice, ``operator_mail``) goes, as the
    guard and the channels see a point: its address, with id 0 (no contact point)."""
    assert message.to_address is not None
    return PointView(id=0, org_id=message.org_id, contact_id=0, kind="email",
                     address=message.to_address, secret=None, confirmed_at=None,
                     opted_out_at=opted_out_at, unsubscribe_token="")


async def opted_out(connection: AsyncConnection,
                    addresses: Iterable[str]) -> dict[str, datetime]:
    """When each of these email addresses opted out (in any account), if it did."""
    wanted = set(addresses)
    if not wanted:
        return {}
    p = n.contact_points.c
    digests = {await keys.digest_of(connection, "email", address): address
               for address in wanted}
    rows = await connection.execute(
        select(p.address_digest, func.min(p.opted_out_at))
        .where(p.kind == "email", p.address_digest.in_(digests), p.opted_out_at.is_not(None))
        .group_by(p.address_digest))
    return {digests[found]: at for found, at in rows.all()}
