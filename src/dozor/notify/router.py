"""The alert router: turns a state change into outbox messages, in the transaction that
records the change (it is a state-change listener of the result writer).

Who: the contacts of the alert policies that cover the monitor (every contact of the
organisation when it has no policies), each on every confirmed point that wants the event.
When: at the incident's start plus the point's escalation delay, inside the point's active
hours (outside them the message is held, or goes to the contact's next point, as the
point says), and never before ``group_wait`` has passed, so what fails together is sent
together (one digest per recipient). A recovery goes to the points that heard of the
outage, and cancels escalations not sent yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.core.types import ErrorCode, MonitorState
from dozor.engine.transitions import StateChange
from dozor.notify import outbox
from dozor.notify.hours import ActiveHours
from dozor.notify.outbox import NewMessage
from dozor.notify.policies import covers
from dozor.notify.templates import render
from dozor.store import notify_tables as n
from dozor.store import tables as t

EXPIRY_ERRORS = frozenset({ErrorCode.CERTIFICATE_EXPIRING, ErrorCode.DOMAIN_EXPIRING})
HEARD = ("sending", "accepted", "delivered")
ALERT_EVENTS = ("down", "expiry")  # what an outage sends; a recovery sends "up"


@dataclass(frozen=True, slots=True)
class Recipient:
    contact_id: int
    language: str
    timezone: str
    points: Sequence[Any]  # rows of contact_points wanting the event, by priority


class Router:
    def __init__(self, group_wait: timedelta = timedelta(seconds=5)) -> None:
        self.group_wait = group_wait

    async def __call__(self, connection: AsyncConnection, change: StateChange) -> None:
        if change.incident_id is None:
            return
        if change.current is MonitorState.DOWN and change.previous is not MonitorState.DOWN:
            await self._outage(connection, change)
        elif change.previous is MonitorState.DOWN and change.current is MonitorState.UP:
            await self._recovery(connection, change)

    async def _outage(self, connection: AsyncConnection, change: StateChange) -> None:
        incident = await _incident(connection, change.incident_id or 0)
        event = "expiry" if incident.first_error in EXPIRY_ERRORS else "down"
        messages = []
        recipients = await _recipients(connection, change, event)
        waiting = await self._groups(connection, recipients, change.at)
        for recipient in recipients:
            for point in _chosen(recipient, change.at):
                due = max(self._due(change.at, point, recipient), change.at + self.group_wait)
                if point.escalation_minutes == 0 and point.id in waiting:
                    due = min(due, waiting[point.id])  # join the group already waiting
                text = render(event, recipient.language, monitor=change.monitor_name,
                              reason=change.reason or incident.cause,
                              at=_local(change.at, recipient.timezone))
                messages.append(NewMessage(
                    change.org_id, recipient.contact_id, point.id, event,
                    f"{event}:{change.incident_id}:{point.id}", text.subject, text.body,
                    recipient.language, due, change.monitor_id, change.incident_id))
        await outbox.enqueue(connection, messages)

    async def _groups(self, connection: AsyncConnection, recipients: Sequence[Recipient],
                      now: datetime) -> dict[int, datetime]:
        """When each point's waiting group goes out (as Alertmanager's group_wait: the
        first alert of a group starts the clock, later ones join it)."""
        m = n.messages.c
        point_ids = [p.id for r in recipients for p in r.points]
        rows = await connection.execute(
            select(m.point_id, func.min(m.due_at))
            .where(m.point_id.in_(point_ids), m.status == "queued", m.due_at > now,
                   m.due_at <= now + self.group_wait)
            .group_by(m.point_id))
        return {int(point_id): due for point_id, due in rows.all()}

    def _due(self, opened: datetime, point: Any, recipient: Recipient) -> datetime:
        due = opened + timedelta(minutes=point.escalation_minutes)
        hours = ActiveHours.from_json(point.active_hours)
        return hours.next_active(due, ZoneInfo(recipient.timezone)) if hours else due

    async def _recovery(self, connection: AsyncConnection, change: StateChange) -> None:
        m = n.messages.c
        incident_id = change.incident_id or 0
        await cancel_escalations(connection, incident_id, "recovered before it was sent",
                                 change.at)
        of_incident = _alerts_of(incident_id)
        heard = (await connection.execute(
            select(m.point_id, m.contact_id, n.contacts.c.language, n.contacts.c.timezone)
            .join(n.contacts, n.contacts.c.id == m.contact_id)
            .where(of_incident, m.status.in_(HEARD), m.point_id.is_not(None))
            .distinct())).all()
        incident = await _incident(connection, incident_id)
        duration = _duration(change.at - incident.opened_at)
        messages = []
        for point_id, contact_id, language, timezone in heard:
            text = render("up", language, monitor=change.monitor_name, duration=duration,
                          at=_local(change.at, timezone))
            messages.append(NewMessage(
                change.org_id, contact_id, point_id, "up",
                f"up:{change.incident_id}:{point_id}", text.subject, text.body, language,
                change.at + self.group_wait, change.monitor_id, change.incident_id))
        await outbox.enqueue(connection, messages)


def _alerts_of(incident_id: int) -> Any:
    m = n.messages.c
    return and_(m.incident_id == incident_id, m.event.in_(ALERT_EVENTS))


async def cancel_escalations(connection: AsyncConnection, incident_id: int, reason: str,
                             now: datetime) -> list[int]:
    """Cancel an incident's alerts still waiting to be sent (escalations, and first alerts
    still in their group wait), as a recovery or an acknowledgement makes them moot.
    Messages being sent or sent already are left alone. Returns the cancelled ids.
    After this, a recovery is told only to the points that heard of the outage."""
    return await outbox.cancel_queued(connection, _alerts_of(incident_id), reason, now)


def _chosen(recipient: Recipient, at: datetime) -> list[Any]:
    """The points to use now: each wanting point, but one outside its hours whose policy is
    ``next`` hands over to the contact's next point that is inside its own."""
    zone = ZoneInfo(recipient.timezone)
    chosen = []
    for index, point in enumerate(recipient.points):
        hours = ActiveHours.from_json(point.active_hours)
        if hours is None or hours.is_active(at, zone) or point.outside_hours != "next":
            chosen.append(point)
            continue
        later = recipient.points[index + 1:]
        stand_in = next((p for p in later if _active(p, at, zone)), None)
        chosen.append(stand_in or point)
    return list({p.id: p for p in chosen}.values())


def _active(point: Any, at: datetime, zone: ZoneInfo) -> bool:
    hours = ActiveHours.from_json(point.active_hours)
    return hours is None or hours.is_active(at, zone)


async def _incident(connection: AsyncConnection, incident_id: int) -> Any:
    i = t.incidents.c
    return (await connection.execute(
        select(i.opened_at, i.cause, i.first_error).where(i.id == incident_id))).one()


async def _recipients(connection: AsyncConnection, change: StateChange,
                      event: str) -> list[Recipient]:
    contact_ids = await _policy_contacts(connection, change)
    c, p = n.contacts.c, n.contact_points.c
    query = (select(c.id, c.language, c.timezone).where(c.org_id == change.org_id)
             .order_by(c.id))
    if contact_ids is not None:
        query = query.where(c.id.in_(contact_ids))
    contacts = (await connection.execute(query)).all()
    points = (await connection.execute(
        select(p.id, p.contact_id, p.events, p.active_hours, p.outside_hours,
               p.escalation_minutes)
        .where(p.contact_id.in_([row.id for row in contacts]), p.confirmed_at.is_not(None),
               p.opted_out_at.is_(None), p.failing_since.is_(None))
        .order_by(p.priority, p.id))).all()
    recipients = []
    for contact in contacts:
        wanting = [pt for pt in points if pt.contact_id == contact.id and event in pt.events]
        if wanting:
            recipients.append(Recipient(contact.id, contact.language, contact.timezone,
                                        wanting))
    return recipients


async def _policy_contacts(connection: AsyncConnection, change: StateChange) -> set[int] | None:
    """Contacts the organisation's policies give this monitor; None: it has no policies."""
    a = n.alert_policies.c
    policies = (await connection.execute(
        select(a.contact_ids, a.all_monitors, a.monitor_names, a.tags)
        .where(a.org_id == change.org_id))).all()
    if not policies:
        return None
    tags = set((await connection.execute(
        select(t.monitors.c.tags).where(t.monitors.c.id == change.monitor_id))).scalar() or [])
    chosen: set[int] = set()
    for policy in policies:
        if covers(policy, change.monitor_name, tags):
            chosen.update(policy.contact_ids)
    return chosen


def _local(at: datetime, timezone: str) -> str:
    """A time as the contact reads it: ``14:02 CET``."""
    return at.astimezone(ZoneInfo(timezone)).strftime("%H:%M %Z")


def _duration(delta: timedelta) -> str:
    """
    >>> _duration(timedelta(seconds=42)), _duration(timedelta(minutes=90))
    ('42 s', '1 h 30 min')
    """
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
