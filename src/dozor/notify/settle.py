"""Recording what the dispatcher did, in one transaction per batch: message statuses, the
delivery log, SMS credits, failing points and channels, fail-over messages and the notice
that tells an account's owner a point stopped working."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.notify import outbox
from dozor.notify.delivery import Attempt, Deferred, Outcome, Refused, Settled
from dozor.notify.guard import PointView
from dozor.notify.outbox import Accepted, Claimed, NewMessage
from dozor.notify.templates import render
from dozor.store import notify_tables as n
from dozor.store import tables as t

# Events that move on to the contact's next point when their point cannot take them.
FAILOVER_EVENTS = frozenset({"down", "up", "expiry"})


async def record(connection: AsyncConnection, outcomes: Sequence[Outcome],
                 now: datetime) -> None:
    accepted: list[Accepted] = []
    events: list[dict[str, Any]] = []
    failovers: list[tuple[Claimed, PointView | None]] = []
    for outcome in outcomes:
        ids = [m.id for m in outcome.group]
        if isinstance(outcome, Deferred):
            await outbox.mark_retry(connection, ids, outcome.until, None, attempted=False)
            events += _events(ids, now, "deferred", outcome.reason)
        elif isinstance(outcome, Refused):
            await outbox.mark_finished(connection, ids, "refused", outcome.reason, now,
                                       attempted=False)
            events += _events(ids, now, "refused", outcome.reason)
            failovers += [(m, outcome.point) for m in outcome.group]
        else:
            events += _attempt_events(outcome, now)
            await _channel_faults(connection, outcome.attempts, now)
            if (attempt := outcome.accepted) is not None:
                accepted.append(_accepted(outcome, attempt))
                await _after_accepted(connection, outcome, attempt)
            elif outcome.retry_at is not None:
                await outbox.mark_retry(connection, ids, outcome.retry_at,
                                        _last_error(outcome), attempted=True)
            else:
                await _failed(connection, outcome, now)
                failovers += [(m, outcome.point) for m in outcome.group]
    await outbox.mark_accepted(connection, accepted, now)
    await outbox.add_events(connection, events)
    for message, point in failovers:
        await fail_over(connection, message, point, now)


def _accepted(outcome: Settled, attempt: Attempt) -> Accepted:
    receipt = attempt.receipt
    assert receipt is not None
    return Accepted([m.id for m in outcome.group], attempt.channel.id,
                    receipt.provider_id, receipt.parts, receipt.cost, receipt.delivered,
                    receipt.tracked, outcome.batch_key)


async def _after_accepted(connection: AsyncConnection, outcome: Settled,
                          attempt: Attempt) -> None:
    assert attempt.receipt is not None
    if outcome.point.kind == "sms":
        o = t.organizations.c
        await connection.execute(update(t.organizations).where(o.id == outcome.point.org_id)
                                 .values(sms_credits=o.sms_credits - attempt.receipt.parts))


async def _failed(connection: AsyncConnection, outcome: Settled, now: datetime) -> None:
    ids = [m.id for m in outcome.group]
    last = outcome.attempts[-1].channel.id if outcome.attempts else None
    await outbox.mark_finished(connection, ids, "failed", outcome.failed, now, attempted=True,
                               channel_id=last)
    if outcome.blame_point and outcome.point.id:  # id 0: an account email, no point
        await mark_point_failing(connection, outcome.point, outcome.failed or "", now)


async def _channel_faults(connection: AsyncConnection, attempts: Sequence[Attempt],
                          now: datetime) -> None:
    for attempt in attempts:
        if attempt.error is not None and attempt.error.channel_fault and attempt.channel.id:
            c = n.notify_channels.c
            await connection.execute(update(n.notify_channels)
                                     .where(c.id == attempt.channel.id)
                                     .values(failing_since=now,
                                             failing_reason=attempt.error.reason))


def _attempt_events(outcome: Settled, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for attempt in outcome.attempts:
        error = attempt.error
        kind = "accepted" if error is None else ("failed" if error.permanent else "retry")
        detail = (f"provider id {attempt.receipt.provider_id}" if attempt.receipt
                  else error.reason if error else None)
        if error is not None and error.channel_fault:
            kind, detail = "channel", f"channel {attempt.channel.name}: {error.reason}"
        for message in outcome.group:
            rows.append({"message_id": message.id, "at": now, "kind": kind,
                         "channel_id": attempt.channel.id, "detail": detail,
                         "provider_code": error.provider_code if error else None,
                         "duration_ms": attempt.duration_ms})
    return rows


def _events(ids: Sequence[int], now: datetime, kind: str, detail: str) -> list[dict[str, Any]]:
    return [{"message_id": i, "at": now, "kind": kind, "detail": detail} for i in ids]


def _last_error(outcome: Settled) -> str | None:
    error = outcome.attempts[-1].error if outcome.attempts else None
    return error.reason if error else "no channel"


async def mark_point_failing(connection: AsyncConnection, point: PointView, reason: str,
                             now: datetime) -> None:
    """Mark a point failing and tell the account's owners, once per failure."""
    p = n.contact_points.c
    changed = await connection.execute(
        update(n.contact_points).where(p.id == point.id, p.failing_since.is_(None))
        .values(failing_since=now, failing_reason=reason))
    if changed.rowcount:
        await notify_owners(connection, point, reason, now)


async def notify_owners(connection: AsyncConnection, point: PointView, reason: str,
                        now: datetime) -> None:
    c, p = n.contacts.c, n.contact_points.c
    contact_name = (await connection.execute(
        select(c.name).where(c.id == point.contact_id))).scalar_one_or_none() or "?"
    owners = (await connection.execute(
        select(p.id, p.contact_id, c.language).join(n.contacts, c.id == p.contact_id)
        .where(c.org_id == point.org_id, c.is_owner, p.id != point.id,
               p.confirmed_at.is_not(None), p.opted_out_at.is_(None),
               p.failing_since.is_(None)))).all()
    label = f"{point.kind} {mask(point.address)}"
    messages = []
    for owner_point, owner_contact, language in owners:
        text = render("point_failing", language, point=label, contact=contact_name,
                      reason=reason)
        messages.append(NewMessage(
            point.org_id, owner_contact, owner_point, "point_failing",
            f"point_failing:{point.id}:{now:%Y%m%d%H%M}:{owner_point}", text.subject,
            text.body, language, now))
    await outbox.enqueue(connection, messages)


async def fail_over(connection: AsyncConnection, message: Claimed, point: PointView | None,
                    now: datetime) -> None:
    """Queue an alert for the contact's next usable point (by priority) that wants it, or
    bring its escalation forward if one is waiting."""
    if message.event not in FAILOVER_EVENTS or message.contact_id is None:
        return
    p = n.contact_points.c
    candidates = (await connection.execute(
        select(p.id, p.events).where(
            p.contact_id == message.contact_id, p.id != (point.id if point else 0),
            p.confirmed_at.is_not(None), p.opted_out_at.is_(None), p.failing_since.is_(None))
        .order_by(p.priority, p.id))).all()
    target = next((pid for pid, wanted in candidates if message.event in wanted), None)
    if target is None:
        return
    key = f"{message.event}:{message.incident_id or message.id}:{target}"
    await outbox.enqueue(connection, [NewMessage(
        message.org_id, message.contact_id, target, message.event, key, message.subject,
        message.body, message.language, now, message.monitor_id, message.incident_id,
        failover_from=message.id)])
    # The next point may be waiting for its escalation delay: it is needed now.
    m = n.messages.c
    await connection.execute(update(n.messages).where(
        m.idempotency_key == key, m.status == "queued", m.due_at > now,
    ).values(due_at=now, failover_from=message.id))


def mask(address: str) -> str:
    """An address shortened for notices: enough to recognise, not to harvest.

    >>> mask("+48600100200"), mask("ops@example.com")
    ('+48…200', 'o…@example.com')
    """
    if "@" in address and not address.startswith("@"):
        local, domain = address.split("@", 1)
        return f"{local[:1]}…@{domain}"
    return f"{address[:3]}…{address[-3:]}" if len(address) > 8 else address
