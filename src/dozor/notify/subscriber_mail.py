"""Mail to the email subscribers of a status page: the confirmation link, and each note
posted on the page.

Both take the path every message takes (outbox, dispatcher, guard, email channel,
delivery log) as messages to an address naming their subscriber (``subscriber_id``).
When one is sent, the dispatcher reads the subscriber again, so the guard sees its
confirmation and its unsubscribing as they are then: a note queued for someone who
unsubscribed a second later is refused, and only the confirmation may go to an address
that has not confirmed. Every note carries a one-click unsubscribe link (RFC 8058,
``List-Unsubscribe``) to ``/status/unsubscribe/<token>``.

    >>> async def example(connection: AsyncConnection, now: datetime) -> None:
    ...     await confirmation(connection, 1, Pending(7, "ala@example.com", "tok"),
    ...                        "Acme", "https://status.example", "en", now)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.notify import outbox
from dozor.notify.guard import PointView
from dozor.notify.outbox import Claimed, NewMessage
from dozor.notify.templates import NOTE_WORDS, language_of, render
from dozor.store.status_subscribers import LINK_VALID, Pending

CONFIRM_PATH = "/status/confirm/"
UNSUBSCRIBE_PATH = "/status/unsubscribe/"


async def confirmation(connection: AsyncConnection, org_id: int, pending: Pending,
                       page_title: str, base_url: str, language: str, now: datetime) -> None:
    """Queue the link that confirms ``pending`` (in the caller's transaction)."""
    text = render("status_confirm", language, page=page_title, days=LINK_VALID.days,
                  link=f"{base_url.rstrip('/')}{CONFIRM_PATH}{pending.token}")
    await outbox.enqueue(connection, [NewMessage(
        org_id, None, None, "status_confirm",
        f"status_confirm:{pending.subscriber_id}:{now.timestamp()}", text.subject,
        text.body, language_of(language), now, to_address=pending.email,
        subscriber_id=pending.subscriber_id)])


async def note_posted(connection: AsyncConnection, org_id: int, page: Any, note_id: int,
                      status: str, note_text: str, subscribers: Iterable[Any],
                      base_url: str, now: datetime) -> None:
    """Queue note ``note_id`` for each confirmed subscriber (``page``: its row with
    title and slug; ``subscribers``: id, email, language and unsubscribe token)."""
    base = base_url.rstrip("/")
    messages = []
    for subscriber in subscribers:
        language = language_of(subscriber.language)
        text = render("status_note", language, page=page.title, text=note_text,
                      status=NOTE_WORDS[language].get(status, status),
                      page_link=f"{base}/status/{page.slug}",
                      unsubscribe=f"{base}{UNSUBSCRIBE_PATH}{subscriber.unsubscribe_token}")
        messages.append(NewMessage(
            org_id, None, None, "status_note", f"status_note:{note_id}:{subscriber.id}",
            text.subject, text.body, language, now, to_address=subscriber.email,
            subscriber_id=subscriber.id))
    await outbox.enqueue(connection, messages)


def recipient(message: Claimed, subscriber: Any, opted_out_at: datetime | None) -> PointView:
    """A subscriber as the guard and the email channel see a point (id 0: no contact
    point behind it): confirmed and opted out as the subscriber row says now, or opted
    out of everything by the address (a STOP anywhere stops this too)."""
    assert message.to_address is not None
    if subscriber is None:  # its page was deleted
        return PointView(id=0, org_id=message.org_id, contact_id=0, kind="email",
                         address=message.to_address, secret=None, confirmed_at=None,
                         opted_out_at=message.created_at, unsubscribe_token="")
    return PointView(id=0, org_id=message.org_id, contact_id=0, kind="email",
                     address=subscriber.email, secret=None,
                     confirmed_at=subscriber.confirmed_at,
                     opted_out_at=subscriber.unsubscribed_at or opted_out_at,
                     unsubscribe_token=subscriber.unsubscribe_token,
                     unsubscribe_path=UNSUBSCRIBE_PATH)
