"""The audit log of the caller's organisation: who did what security-relevant thing,
when and from where. Admins and owners only (it shows members' addresses and IPs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from dozor.api import paging
from dozor.api.deps import Caller, Connection
from dozor.api.paging import Cursor, End, Limit, Start
from dozor.api.problems import invalid
from dozor.privacy.audit import ACTIONS
from dozor.store import account_tables as a

router = APIRouter(tags=["audit"])


@router.get("/audit")
async def list_audit(caller: Caller, conn: Connection, limit: Limit = 100,
                     cursor: Cursor = None, action: str | None = None, start: Start = None,
                     end: End = None) -> dict[str, Any]:
    """Entries newest first, within [start, end), of one ``action`` when given."""
    caller.require("admin")
    if action is not None and action not in ACTIONS:
        raise invalid([("action", f"one of {', '.join(sorted(ACTIONS))}")])
    start, end = paging.time_range(start, end)
    log, u = a.audit_log.c, a.users.c
    query = (select(a.audit_log, u.email.label("user_email"), u.name.label("user_name"))
             .outerjoin(a.users, u.id == log.user_id)
             .where(log.org_id == caller.org_id).order_by(log.id.desc()).limit(limit + 1))
    before = paging.decode(cursor)
    if before is not None:
        query = query.where(log.id < before)
    if action is not None:
        query = query.where(log.action == action)
    if start is not None:
        query = query.where(log.at >= start)
    if end is not None:
        query = query.where(log.at < end)
    return paging.page((await conn.execute(query)).all(), limit, _entry)


def _entry(row: Any) -> dict[str, Any]:
    user = None if row.user_id is None else {"id": row.user_id, "email": row.user_email,
                                             "name": row.user_name}
    return {"id": row.id, "at": row.at.isoformat(), "action": row.action, "user": user,
            "target": row.target, "ip": row.ip, "detail": row.detail}
