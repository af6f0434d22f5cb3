"""Erasure: removing an organisation, or one of its contacts, from every table.

An organisation goes whole: every row ``export.SCOPES`` finds for it, and its users who
belong to no other organisation (a user who also belongs elsewhere keeps their account
and loses only this membership). The work is split into bounded transactions (raw
results monitor by monitor), so a large account does not hold the database for long;
the organisation is frozen first (``restricted_at``: no checks, no messages) and its row
goes last, so an erasure cut short by a crash is finished by running it again.

A contact goes with their points, the consent ledger about those points (also entries
whose point was deleted earlier but whose address is one of theirs), the codes sent to
them, their messages and attempts, and their place in alert policies.

Each erasure ends with an audit entry outside the erased organisation (``org_id`` NULL),
so the log shows when it was done after the organisation's own log has gone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from dozor.privacy import audit, export, keys, requests, restriction
from dozor.store import account_tables as a
from dozor.store import notify_tables as n
from dozor.store import tables as t
from dozor.store.db import write_transaction

RESULT_CHUNK = 200  # monitors whose raw results go in one transaction
# Tables an organisation's erasure removes by the users it erases, not by its scope
# (a user who stays in another organisation keeps these).
BY_USER = {"users": a.users.c.id, "recovery_codes": a.recovery_codes.c.user_id,
           "email_tokens": a.email_tokens.c.user_id}
# Exported with the organisation but kept when it is erased: they hold no personal data
# and are the record that its requests were answered.
KEPT = {"erasure_requests": "the proof that an erasure was asked for and done",
        "breaches": "a breach concerns several accounts; each one's notice row goes"}


@dataclass
class ErasureReport:
    rows: Counter[str] = field(default_factory=Counter)  # removed (or changed), per table

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def as_detail(self) -> dict[str, Any]:
        return {"rows": dict(sorted(self.rows.items())), "total": self.total}


async def erase_organisation(engine: AsyncEngine, org_id: int, *, now: datetime,
                             reason: str, request_id: int | None = None) -> ErasureReport:
    """Remove organisation ``org_id`` and everything held about it. Safe to run again
    after an interruption; a second run of a finished erasure removes nothing."""
    report = ErasureReport()
    async with write_transaction(engine) as conn:
        await restriction.restrict(conn, org_id, now=now)  # no checks, no messages
        users = await _users_only_here(conn, org_id)
        if users:  # their entries outside any organisation (failed log-ins) go with them
            report.rows["audit_log"] += await _delete(conn, a.audit_log, and_(
                a.audit_log.c.org_id.is_(None), a.audit_log.c.user_id.in_(users)))
            for name, column in BY_USER.items():
                report.rows[name] += await _delete(
                    conn, t.metadata.tables[name], column.in_(users))
    async with engine.connect() as conn:
        monitor_ids = list((await conn.execute(select(t.monitors.c.id).where(
            t.monitors.c.org_id == org_id))).scalars())
    for start in range(0, len(monitor_ids), RESULT_CHUNK):
        async with write_transaction(engine) as conn:
            report.rows["results"] += await _delete(
                conn, t.results, t.results.c.monitor_id.in_(
                    monitor_ids[start:start + RESULT_CHUNK]))
    # Children before parents, so each scope's subquery still finds its parents.
    for table in reversed(t.metadata.sorted_tables):
        if table.name in BY_USER or table.name in KEPT or table.name == "organizations" \
                or table.name not in export.SCOPES:
            continue
        async with write_transaction(engine) as conn:
            report.rows[table.name] += await _delete(conn, table,
                                                     export.SCOPES[table.name](org_id))
    async with write_transaction(engine) as conn:
        report.rows["organizations"] += await _delete(
            conn, t.organizations, t.organizations.c.id == org_id)
        await _record(conn, org_id, None, now, reason, request_id, report)
    keys.forget(org_id)  # its data_keys row went with the organisation's
    return report


async def erase_contact(conn: AsyncConnection, org_id: int, contact_id: int, *,
                        now: datetime, reason: str, request_id: int | None = None
                        ) -> ErasureReport:
    """Remove contact ``contact_id`` of ``org_id`` and everything held about them, in the
    caller's transaction (a contact's rows are few)."""
    report = ErasureReport()
    p = n.contact_points.c
    points = (await conn.execute(select(p.id, p.kind, p.address).where(
        p.org_id == org_id, p.contact_id == contact_id))).all()
    point_ids = [row.id for row in points]
    addresses = {(row.kind, row.address) for row in points}
    report.rows["consents"] += await _delete(conn, n.consents, and_(
        n.consents.c.org_id == org_id, n.consents.c.point_id.in_(point_ids)))
    # Ledger entries of points deleted earlier keep only the address: match on it here
    # (in Python: the address may be sealed, so SQL cannot compare it).
    orphans = (await conn.execute(select(n.consents.c.id, n.consents.c.kind,
                                         n.consents.c.address).where(
        n.consents.c.org_id == org_id, n.consents.c.point_id.is_(None)))).all()
    theirs = [row.id for row in orphans if (row.kind, row.address) in addresses]
    report.rows["consents"] += await _delete(conn, n.consents, n.consents.c.id.in_(theirs))
    m = n.messages.c
    report.rows["message_events"] += await _delete(
        conn, n.message_events, n.message_events.c.message_id.in_(
            select(m.id).where(m.org_id == org_id, or_(m.contact_id == contact_id,
                                                       m.point_id.in_(point_ids)))))
    report.rows["messages"] += await _delete(conn, n.messages, and_(
        m.org_id == org_id, or_(m.contact_id == contact_id, m.point_id.in_(point_ids))))
    report.rows["verifications"] += await _delete(
        conn, n.verifications, n.verifications.c.point_id.in_(point_ids))
    report.rows["alert_policies"] += await _drop_from_policies(conn, org_id, contact_id)
    report.rows["contact_points"] += await _delete(conn, n.contact_points,
                                                   p.id.in_(point_ids))
    report.rows["contacts"] += await _delete(conn, n.contacts, and_(
        n.contacts.c.org_id == org_id, n.contacts.c.id == contact_id))
    await _record(conn, org_id, contact_id, now, reason, request_id, report)
    return report


async def run_open(engine: AsyncEngine, now: datetime) -> int:
    """Carry out every open request, oldest deadline first; returns how many were done."""
    async with engine.connect() as conn:
        pending = await requests.open_requests(conn)
    for request in pending:
        if request.contact_id is None:
            await erase_organisation(engine, request.org_id, now=now,
                                             reason=request.source, request_id=request.id)
        else:
            async with write_transaction(engine) as conn:
                await erase_contact(conn, request.org_id, request.contact_id,
                                            now=now, reason=request.source,
                                            request_id=request.id)
    return len(pending)


async def _users_only_here(conn: AsyncConnection, org_id: int) -> list[int]:
    ms = a.memberships.c
    elsewhere = select(ms.user_id).where(ms.org_id != org_id)
    return list((await conn.execute(select(ms.user_id).where(
        ms.org_id == org_id, ms.user_id.not_in(elsewhere)))).scalars())


async def _drop_from_policies(conn: AsyncConnection, org_id: int, contact_id: int) -> int:
    rows = (await conn.execute(select(n.alert_policies.c.id, n.alert_policies.c.contact_ids)
                               .where(n.alert_policies.c.org_id == org_id))).all()
    changed = 0
    for row in rows:
        if contact_id in row.contact_ids:
            await conn.execute(update(n.alert_policies).where(
                n.alert_policies.c.id == row.id).values(
                contact_ids=[c for c in row.contact_ids if c != contact_id],
                version=n.alert_policies.c.version + 1))
            changed += 1
    return changed


async def _delete(conn: AsyncConnection, table: Table, where: ColumnElement[bool]) -> int:
    return int((await conn.execute(delete(table).where(where))).rowcount or 0)


async def _record(conn: AsyncConnection, org_id: int, contact_id: int | None,
                  now: datetime, reason: str, request_id: int | None,
                  report: ErasureReport) -> None:
    request_id = await requests.mark_done(conn, org_id, contact_id, now=now, reason=reason,
                                          request_id=request_id, detail=report.as_detail())
    target = f"organisation {org_id}" if contact_id is None else f"contact {contact_id}"
    # An organisation's own log has just gone: its erasure is recorded outside it.
    await audit.record(conn, "erasure", org_id=org_id if contact_id is not None else None,
                       user_id=None, target=target,
                       detail={"reason": reason, "request": request_id, **report.as_detail()})


async def count_rows(conn: AsyncConnection, org_id: int) -> int:
    """Rows still held for the organisation (0 once it is erased)."""
    total = 0
    for name, scope in export.SCOPES.items():
        if name in KEPT:
            continue
        total += int(await conn.scalar(select(func.count()).select_from(
            t.metadata.tables[name]).where(scope(org_id))) or 0)
    return total
