"""Visitors subscribed to a status page by email: asking, confirming by the mailed link,
unsubscribing, and the confirmed subscribers a note goes to.

A request never tells who is subscribed: it answers the same whether the address is new,
waiting for its link or confirmed (a confirmed one is left as it is and mailed nothing).
The confirmation token is stored as its SHA-256 (256 random bits, like account tokens);
the unsubscribe token is stored as it is, because every mail carries it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.privacy import keys
from dozor.store.status_tables import status_pages, status_subscribers

LINK_VALID = timedelta(days=2)
s = status_subscribers.c


@dataclass(frozen=True, slots=True)
class Pending:
    """A subscription waiting for its link: mail ``token`` to ``email``."""

    subscriber_id: int
    email: str
    token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def request(conn: AsyncConnection, page_id: int, email: str, language: str,
                  now: datetime) -> Pending | None:
    """Start (or restart) a subscription of ``email`` (normalised); None when it is
    confirmed already."""
    token = secrets.token_urlsafe(32)
    digest = await keys.digest_of(conn, "email", email)
    row = (await conn.execute(select(s.id, s.confirmed_at).where(
        s.page_id == page_id, s.email_digest == digest))).first()
    if row is not None and row.confirmed_at is not None:
        return None
    fields = {"confirm_hash": _hash(token), "requested_at": now, "language": language,
              "unsubscribed_at": None}  # asking again undoes an unsubscribing
    if row is None:
        org_id = (await conn.execute(select(status_pages.c.org_id).where(
            status_pages.c.id == page_id))).scalar_one()
        subscriber_id = (await conn.execute(status_subscribers.insert().values(
            page_id=page_id, email=await keys.personal(conn, org_id, email),
            email_digest=digest, unsubscribe_token=secrets.token_urlsafe(24),
            created_at=now, **fields).returning(s.id))).scalar_one()
    else:
        subscriber_id = row.id
        await conn.execute(update(status_subscribers).where(s.id == row.id).values(**fields))
    return Pending(subscriber_id, email, token)


async def published_page(conn: AsyncConnection, slug: str) -> Any:
    """The published page at ``slug`` with what the public read also shows, and its
    organisation (whose mail the subscription's messages are); None for any other."""
    p = status_pages.c
    return (await conn.execute(select(p.id, p.org_id, p.slug, p.title, p.description,
                                      p.custom_domain)
                               .where(p.slug == slug, p.published))).first()


async def confirm(conn: AsyncConnection, token: str, now: datetime, ip: str | None,
                  user_agent: str | None) -> bool:
    """Confirm the subscription the link's ``token`` belongs to, recording when, from
    where and with what; False for an unknown, used or expired link."""
    found = (await conn.execute(
        select(s.id, status_pages.c.org_id).join(status_pages, status_pages.c.id == s.page_id)
        .where(s.confirm_hash == _hash(token), s.requested_at > now - LINK_VALID))).first()
    if found is None:
        return False
    await keys.ensure(conn, found.org_id)  # the record is sealed with the page's account's key
    done = await conn.execute(
        update(status_subscribers)
        .where(s.id == found.id, s.confirm_hash == _hash(token))  # once, by one request
        .values(confirmed_at=now, confirmed_ip=keys.Personal.of(found.org_id, ip),
                confirmed_user_agent=keys.Personal.of(found.org_id,
                                                      (user_agent or "")[:400] or None),
                confirm_hash=None, unsubscribed_at=None))
    return done.rowcount == 1


async def unsubscribe(conn: AsyncConnection, token: str, now: datetime) -> bool:
    """End the subscription with this unsubscribe token; False for an unknown token.
    Unsubscribing twice is fine (the second changes nothing)."""
    row = (await conn.execute(select(s.id, s.unsubscribed_at).where(
        s.unsubscribe_token == token))).first()
    if row is None:
        return False
    if row.unsubscribed_at is None:
        await conn.execute(update(status_subscribers).where(s.id == row.id).values(
            unsubscribed_at=now, confirmed_at=None, confirm_hash=None))
    return True


async def confirmed(conn: AsyncConnection, page_id: int) -> Sequence[Any]:
    """The page's confirmed subscribers: id, email, language, unsubscribe token."""
    return (await conn.execute(
        select(s.id, s.email, s.language, s.unsubscribe_token)
        .where(s.page_id == page_id, s.confirmed_at.is_not(None),
               s.unsubscribed_at.is_(None)).order_by(s.id))).all()


async def by_ids(conn: AsyncConnection, ids: set[int]) -> dict[int, Any]:
    """Subscribers as the dispatcher needs them: address, confirmation, opt-out, token."""
    if not ids:
        return {}
    rows = await conn.execute(select(s.id, s.email, s.confirmed_at, s.unsubscribed_at,
                                     s.unsubscribe_token).where(s.id.in_(ids)))
    return {row.id: row for row in rows.all()}
