"""The retention job: what is past its window goes, in short transactions.

- Organisations past their deletion date (``core.retention``: a trial some months after
  it ended, a paid account some years after its period) are erased whole
  (``privacy.erasure``).
- Messages (the delivery log: texts, addresses, provider ids; their events go with them
  by ``ON DELETE CASCADE``, enforced on SQLite by ``PRAGMA foreign_keys`` in
  ``store.db``) sent or given up more than ``retention_messages`` ago. A message still
  queued or being sent is never removed, however old.
- Housekeeping: sessions (IP address, browser), email tokens and confirmation codes
  that expired, or were used, more than ``GRACE`` ago. The grace keeps a recent log-in
  history for a security review and lets a late click be answered "expired", not
  "unknown".
- The rate limits' hits (``rate_limit_hits``, PostgreSQL) once they stop counting: no
  grace, so a digest of an IP or address is kept its limit's window (an hour at most)
  plus the job's period.
- Then raw results, rollups and closed incidents by their own windows
  (``store.retention``).

``run(..., dry_run=True)`` counts all of this and changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Table, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from dozor.core import retention as plan_retention
from dozor.privacy.erasure import erase_organisation
from dozor.settings import Settings
from dozor.store import account_tables as a
from dozor.store import notify_tables as n
from dozor.store import tables as t
from dozor.store.db import write_transaction
from dozor.store.retention import PruneReport, prune
from dozor.store.retention import Windows as PruneWindows

log = logging.getLogger(__name__)
GRACE = timedelta(days=30)
CHUNK = 500  # rows per transaction
UNFINISHED = ("queued", "sending")  # the outbox's own: never removed


@dataclass(frozen=True, slots=True)
class Windows:
    plans: plan_retention.Windows
    messages: timedelta
    prune: PruneWindows

    @classmethod
    def from_settings(cls, s: Settings) -> Windows:
        return cls(plan_retention.Windows(trial=s.retention_trial, paid=s.retention_paid),
                   s.retention_messages,
                   PruneWindows(s.retention_raw, s.retention_hourly, s.retention_daily))


@dataclass(frozen=True, slots=True)
class Due:
    """An organisation whose data is past its deletion date."""
    id: int
    name: str
    plan: str
    trial_ends_at: datetime | None
    paid_until: datetime | None
    delete_at: datetime

    def line(self) -> str:
        ended = self.trial_ends_at if self.plan == "trial" else self.paid_until
        return (f"organisation {self.id} ({self.name}): {self.plan}, ended "
                f"{ended:%Y-%m-%d}, due {self.delete_at:%Y-%m-%d %H:%M}")


@dataclass
class Report:
    organisations: list[Due] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # organisations whose erasure failed
    messages: int = 0
    sessions: int = 0
    email_tokens: int = 0
    verifications: int = 0
    rate_limit_hits: int = 0
    prune: PruneReport = field(default_factory=PruneReport)

    def lines(self) -> list[str]:
        failed = set(self.failed)
        return [*(org.line() + (" - FAILED, see the log" if org.id in failed else "")
                  for org in self.organisations),
                f"organisations: {len(self.organisations) - len(failed)}",
                f"messages: {self.messages}", f"sessions: {self.sessions}",
                f"email tokens: {self.email_tokens}",
                f"confirmation codes: {self.verifications}",
                f"rate-limit hits: {self.rate_limit_hits}", *self.prune.lines()]


async def run(engine: AsyncEngine, windows: Windows, now: datetime, *,
              dry_run: bool = False) -> Report:
    """Remove (or, with ``dry_run``, list and count) everything past its window at
    ``now``. The caller rolls raw results up first (``engine.rollup_job``)."""
    report = Report(organisations=await due_organisations(engine, windows.plans, now))
    if not dry_run:
        for org in report.organisations:
            if not await _erase(engine, org, windows.plans, now):
                report.failed.append(org.id)
    report.messages = await old_messages(engine, now - windows.messages, dry_run)
    report.sessions, report.email_tokens, report.verifications = \
        await housekeeping(engine, now, dry_run)
    report.rate_limit_hits = await expired_hits(engine, now, dry_run)
    report.prune = await prune(engine, windows.prune, now, dry_run)
    return report


async def due_organisations(engine: AsyncEngine, windows: plan_retention.Windows,
                            now: datetime, only: int | None = None) -> list[Due]:
    """Organisations past their deletion date (or just ``only``, if it is), oldest date
    first."""
    o = t.organizations.c
    query = select(o.id, o.name, o.plan, o.trial_ends_at, o.paid_until).where(or_(
        (o.plan == "trial") & (o.trial_ends_at <= now - windows.trial),
        (o.plan == "paid") & (o.paid_until <= now - windows.paid)))
    if only is not None:
        query = query.where(o.id == only)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    due = [_due(row, windows) for row in rows]
    # core.retention decides; the query only narrows down what it is asked about.
    return sorted((d for d in due if d is not None and d.delete_at <= now),
                  key=lambda d: (d.delete_at, d.id))


def _due(row: Any, windows: plan_retention.Windows) -> Due | None:
    when = plan_retention.deletion_date(row.plan, windows=windows,
                                        trial_ends_at=row.trial_ends_at,
                                        paid_until=row.paid_until)
    if when is None:
        return None
    return Due(row.id, row.name, row.plan, row.trial_ends_at, row.paid_until, when)


async def _erase(engine: AsyncEngine, org: Due, windows: plan_retention.Windows,
                 now: datetime) -> bool:
    # Asked again just before: a renewal since the list was read keeps the account.
    if not await due_organisations(engine, windows, now, only=org.id):
        log.info("retention: organisation %d is no longer due", org.id)
        return True
    try:
        erased = await erase_organisation(engine, org.id, now=now, reason="retention")
    except Exception:  # the next organisations, and the rest of the job, still run
        log.exception("retention: erasing organisation %d failed", org.id)
        return False
    log.info("retention: organisation %d (%s, due %s) erased, %d rows", org.id, org.plan,
             org.delete_at.isoformat(), erased.total)
    return True


async def old_messages(engine: AsyncEngine, cutoff: datetime, dry_run: bool) -> int:
    """Remove messages finished before ``cutoff``. Walks the primary key from the oldest
    message, a chunk at a time, and stops at the first one created after ``cutoff``
    (ids grow with time), so a run reads only what is old, however large the log."""
    m = n.messages.c
    # A message accepted by its provider and never receipted stays "accepted": its
    # acceptance is when it was last heard of.
    ended = func.coalesce(m.finished_at, m.accepted_at, m.created_at)
    is_due = m.status.not_in(UNFINISHED) & (ended < cutoff)
    removed, after = 0, 0
    while True:
        async with engine.connect() as conn:
            rows = (await conn.execute(
                select(m.id, m.created_at, is_due.label("due")).where(m.id > after)
                .order_by(m.id).limit(CHUNK))).all()
        old = [row for row in rows if row.created_at < cutoff]
        ids = [row.id for row in old if row.due]
        if ids and not dry_run:
            async with write_transaction(engine) as conn:
                removed += (await conn.execute(
                    delete(n.messages).where(m.id.in_(ids), is_due))).rowcount
        elif ids:
            removed += len(ids)
        if len(old) < CHUNK:
            return removed
        after = old[-1].id


async def housekeeping(engine: AsyncEngine, now: datetime,
                       dry_run: bool) -> tuple[int, int, int]:
    """Remove sessions, email tokens and confirmation codes expired or used more than
    ``GRACE`` before ``now``: (sessions, email tokens, confirmation codes)."""
    before = now - GRACE
    s, e, v = a.sessions.c, a.email_tokens.c, n.verifications.c
    return (await _in_chunks(engine, a.sessions, s.token_hash, s.expires_at < before,
                             dry_run),
            await _in_chunks(engine, a.email_tokens, e.token_hash,
                             (e.expires_at < before) | (e.used_at < before), dry_run),
            await _in_chunks(engine, n.verifications, v.id, v.expires_at < before, dry_run))


async def expired_hits(engine: AsyncEngine, now: datetime, dry_run: bool) -> int:
    """Remove the rate limits' hits that stopped counting (on PostgreSQL; ``api.ratelimit``):
    a row, which holds a digest of an IP or address, lives its window plus a period."""
    h = a.rate_limit_hits.c
    return await _in_chunks(engine, a.rate_limit_hits, h.id, h.expires_at <= now, dry_run)


async def _in_chunks(engine: AsyncEngine, table: Table, key: Column[Any],
                     condition: ColumnElement[bool], dry_run: bool) -> int:
    if dry_run:
        async with engine.connect() as conn:
            return int(await conn.scalar(
                select(func.count()).select_from(table).where(condition)) or 0)
    removed = 0
    while True:
        async with write_transaction(engine) as conn:
            keys = list((await conn.execute(select(key).where(condition).limit(CHUNK)))
                        .scalars())
            if keys:
                removed += (await conn.execute(
                    delete(table).where(key.in_(keys), condition))).rowcount
        if len(keys) < CHUNK:
            return removed
