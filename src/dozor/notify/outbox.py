"""The outbox: messages written with the decision to send them, claimed and settled by
dispatchers.

A message moves ``queued -> sending -> accepted -> delivered`` (or ``failed``, ``refused``,
``cancelled``). Claiming is a compare-and-swap: one ``UPDATE ... WHERE status = 'queued'``
(with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several dispatchers never take the same
message. A claim is a lease: a dispatcher that dies leaves ``sending`` rows whose lease
runs out, and the next claim takes them again, to be sent under the same idempotency key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, case, func, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.privacy import keys
from dozor.store import notify_tables as n

UNFINISHED = ("queued", "sending")
FINISHED = ("accepted", "delivered", "failed", "refused", "cancelled")
# Events whose text carries a one-time secret (a confirmation code, a password token):
# once such a message is finished its text is replaced, so the delivery log keeps no
# secret anyone reading it could use.
SECRET_EVENTS = ("verification", "password_reset", "invitation", "status_confirm")
REDACTED = "(removed once sent: it held a one-time code)"


@dataclass(frozen=True, slots=True)
class NewMessage:
    org_id: int | None  # None: a notice to the installation's operator (``operator_mail``)
    contact_id: int | None
    point_id: int | None
    event: str
    idempotency_key: str
    subject: str
    body: str
    language: str
    due_at: datetime
    monitor_id: int | None = None
    incident_id: int | None = None
    failover_from: int | None = None
    to_address: str | None = None  # an account email's address (no contact point)
    subscriber_id: int | None = None  # a status page subscriber's (with to_address)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    org_id: int | None
    contact_id: int | None
    point_id: int | None
    event: str
    idempotency_key: str
    subject: str
    body: str
    language: str
    attempts: int
    created_at: datetime
    monitor_id: int | None
    incident_id: int | None
    to_address: str | None = None
    subscriber_id: int | None = None


async def enqueue(connection: AsyncConnection, messages: Sequence[NewMessage]) -> None:
    """Queue messages in the caller's transaction; a key queued before is left alone
    (so replaying a state change never doubles its alerts)."""
    if not messages:
        return
    # An address is sealed with its organisation's data key (an operator's, of none,
    # with the instance key).
    for org_id in {m.org_id for m in messages if m.to_address is not None}:
        if org_id is not None:
            await keys.ensure(connection, org_id)
    rows = [_row(m) for m in messages]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(n.messages).on_conflict_do_nothing(
        index_elements=["idempotency_key"])
    await connection.execute(statement, rows)


def _row(message: NewMessage) -> dict[str, Any]:
    return {"org_id": message.org_id, "contact_id": message.contact_id,
            "point_id": message.point_id, "event": message.event,
            "idempotency_key": message.idempotency_key, "subject": message.subject,
            "body": message.body, "language": message.language, "status": "queued",
            "due_at": message.due_at, "attempts": 0, "tracked": True,
            "monitor_id": message.monitor_id, "incident_id": message.incident_id,
            "failover_from": message.failover_from,
            "to_address": keys.Personal.of(message.org_id, message.to_address),
            "subscriber_id": message.subscriber_id,
            "created_at": datetime.now(UTC)}


CLAIMED_COLUMNS = (n.messages.c.id, n.messages.c.org_id, n.messages.c.contact_id,
                   n.messages.c.point_id, n.messages.c.event, n.messages.c.idempotency_key,
                   n.messages.c.subject, n.messages.c.body, n.messages.c.language,
                   n.messages.c.attempts, n.messages.c.created_at, n.messages.c.monitor_id,
                   n.messages.c.incident_id, n.messages.c.to_address,
                   n.messages.c.subscriber_id)


async def claim(connection: AsyncConnection, now: datetime, lease: timedelta,
                limit: int) -> list[Claimed]:
    """Take up to ``limit`` due messages (and ones whose lease ran out) for sending."""
    m = n.messages.c
    due = and_(m.status.in_(UNFINISHED), m.due_at <= now,
               or_(m.status == "queued", m.claimed_until < now))
    candidates = select(m.id).where(due).order_by(m.due_at).limit(limit)
    if connection.dialect.name == "postgresql":
        # A materialised CTE runs once. As ``IN (subquery)`` PostgreSQL may run the locking
        # subquery again per row, and with SKIP LOCKED each run finds new rows: one claim
        # then takes the whole queue (a test with two dispatchers caught it).
        chosen = (candidates.with_for_update(skip_locked=True).cte("chosen")
                  .prefix_with("MATERIALIZED"))
        statement = update(n.messages).where(m.id == chosen.c.id)
    else:  # SQLite: one writer at a time, and the subquery is evaluated once
        statement = update(n.messages).where(m.id.in_(candidates.scalar_subquery()), due)
    statement = (statement.values(status="sending", claimed_until=now + lease)
                 .returning(*CLAIMED_COLUMNS))
    rows = (await connection.execute(statement)).all()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


@dataclass(frozen=True, slots=True)
class Accepted:
    ids: Sequence[int]
    channel_id: int | None
    provider_id: str | None
    parts: int
    cost: Decimal | None
    delivered: bool
    tracked: bool
    batch_key: str


async def mark_accepted(connection: AsyncConnection, outcomes: Sequence[Accepted],
                        now: datetime) -> None:
    rows = []
    for outcome in outcomes:
        status = "delivered" if outcome.delivered else "accepted"
        for index, message_id in enumerate(outcome.ids):
            first = index == 0  # parts and cost are counted once for a digest
            rows.append({"b_id": message_id, "status": status, "channel_id": outcome.channel_id,
                         "provider_id": outcome.provider_id, "batch_key": outcome.batch_key,
                         "parts": outcome.parts if first else 0,
                         "cost": outcome.cost if first else None,
                         "tracked": outcome.tracked, "accepted_at": now,
                         "finished_at": now if outcome.delivered or not outcome.tracked
                         else None})
    if rows:
        await connection.execute(
            update(n.messages).where(n.messages.c.id == bindparam("b_id"))
            .values(status=bindparam("status"), channel_id=bindparam("channel_id"),
                    provider_id=bindparam("provider_id"), batch_key=bindparam("batch_key"),
                    parts=bindparam("parts"), cost=bindparam("cost"),
                    tracked=bindparam("tracked"), accepted_at=bindparam("accepted_at"),
                    finished_at=bindparam("finished_at"), claimed_until=None,
                    body=_without_secrets(),
                    attempts=n.messages.c.attempts + 1),
            rows)


def _without_secrets() -> Any:
    """The body a finished message keeps: its own, unless it held a secret."""
    m = n.messages.c
    # Constants in the SQL, not parameters: mark_accepted runs it as an executemany,
    # which cannot expand a list parameter.
    secret = m.event.in_([literal_column(f"'{event}'") for event in SECRET_EVENTS])
    return case((secret, literal_column(f"'{REDACTED}'")), else_=m.body)


async def mark_retry(connection: AsyncConnection, ids: Iterable[int], due_at: datetime,
                     error: str | None, attempted: bool) -> None:
    """Put messages back in the queue (a transient error, or held by the guard)."""
    values: dict[str, Any] = {"status": "queued", "due_at": due_at, "claimed_until": None}
    if error is not None:
        values["last_error"] = error
    if attempted:
        values["attempts"] = n.messages.c.attempts + 1
    await connection.execute(update(n.messages).where(n.messages.c.id.in_(list(ids)))
                             .values(**values))


async def mark_finished(connection: AsyncConnection, ids: Iterable[int], status: str,
                        error: str | None, now: datetime, attempted: bool,
                        channel_id: int | None = None) -> None:
    """End messages as ``failed``, ``refused`` or ``cancelled``."""
    assert status in FINISHED
    values: dict[str, Any] = {"status": status, "last_error": error, "finished_at": now,
                              "claimed_until": None, "body": _without_secrets()}
    if attempted:
        values["attempts"] = n.messages.c.attempts + 1
    if channel_id is not None:
        values["channel_id"] = channel_id
    await connection.execute(update(n.messages).where(n.messages.c.id.in_(list(ids)))
                             .values(**values))


async def cancel_queued(connection: AsyncConnection, condition: Any, reason: str,
                        now: datetime) -> list[int]:
    """Cancel messages not sent yet that match ``condition`` (an escalation made moot by
    recovery, messages to a point that opted out). Returns their ids."""
    statement = (update(n.messages)
                 .where(n.messages.c.status == "queued", condition)
                 .values(status="cancelled", last_error=reason, finished_at=now,
                         body=_without_secrets())
                 .returning(n.messages.c.id))
    return [int(i) for i in (await connection.execute(statement)).scalars()]


async def add_events(connection: AsyncConnection, events: Sequence[dict[str, Any]]) -> None:
    """Append to the delivery log (``message_id``, ``at``, ``kind`` and optional
    ``channel_id``, ``detail``, ``provider_code``, ``duration_ms``)."""
    if events:
        full = [{"channel_id": None, "detail": None, "provider_code": None,
                 "duration_ms": None, **event} for event in events]
        await connection.execute(n.message_events.insert(), full)


async def recent_counts(connection: AsyncConnection, point_ids: Iterable[int],
                        since: datetime) -> dict[int, int]:
    """Messages accepted for each point since a time (the per-recipient cap)."""
    m = n.messages.c
    statement = (select(m.point_id, func.count(func.distinct(func.coalesce(m.batch_key,
                                                                           m.idempotency_key))))
                 .where(m.point_id.in_(list(point_ids)), m.accepted_at >= since)
                 .group_by(m.point_id))
    return {int(p): int(c) for p, c in (await connection.execute(statement)).all()}


@dataclass(frozen=True, slots=True)
class Depth:
    """How much the outbox holds that is not finished (for /metrics)."""

    by_status: dict[str, int]  # queued (due now or later) and sending, each present
    oldest_due: datetime | None  # the earliest due_at of a queued message already due


async def depth(connection: AsyncConnection, now: datetime) -> Depth:
    """Unfinished messages by status, read through the queue's partial index."""
    m = n.messages.c
    rows = await connection.execute(select(m.status, func.count())
                                    .where(m.status.in_(UNFINISHED)).group_by(m.status))
    counts = dict.fromkeys(UNFINISHED, 0) | {str(status): int(count) for status, count in rows}
    # The index's own condition is repeated so that SQLite sees the index applies.
    oldest = await connection.scalar(select(func.min(m.due_at)).where(
        m.status.in_(UNFINISHED), m.status == "queued", m.due_at <= now))
    return Depth(counts, oldest)
