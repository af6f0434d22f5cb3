"""Notices to the installation's operator: the person running this Dozor, at the
addresses ``DOZOR_OPERATOR_EMAIL`` names (a probe gone silent, and back).

They take the path every message takes (the outbox, the dispatcher, the guard, the
configured email channel), to an address as account emails do, but they belong to no
organisation (``messages.org_id`` is NULL, the address sealed with the instance key):
no organisation's suspension, restriction, cap or delivery log concerns them, and the
operator's own setting is the request for them (``guard.OPERATOR_EVENTS``). ``dozor
messages list`` shows them.

    >>> async def example(connection: AsyncConnection, now: datetime) -> None:
    ...     await send(connection, ("ops@example.com",), "probe_back", "probe_back:3:...",
    ...                "en", now, probe="fra-1", location="fra", at="...", since="...")
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.notify import outbox
from dozor.notify.guard import OPERATOR_EVENTS
from dozor.notify.outbox import NewMessage
from dozor.notify.templates import language_of, render


async def send(connection: AsyncConnection, addresses: Sequence[str], event: str, key: str,
               language: str, now: datetime, **values: Any) -> int:
    """Queue the notice to each address, in the caller's transaction; ``key`` names the
    occasion (one notice per occasion and address, however often it is queued). Returns
    how many were queued."""
    assert event in OPERATOR_EVENTS, event
    text = render(event, language, **values)
    await outbox.enqueue(connection, [NewMessage(
        None, None, None, event, f"{key}:{_short(address)}", text.subject, text.body,
        language_of(language), now, to_address=address) for address in addresses])
    return len(addresses)


def _short(address: str) -> str:
    """An address in a few characters: idempotency keys are at most 120."""
    return hashlib.sha256(address.encode()).hexdigest()[:16]
