"""``GET /api/v1/account/retention``: what is kept of the organisation, for how long, and
the date its data would be deleted if nothing changes (``core.retention``; the job is
``privacy.retention``). Owners and admins, as for the export.

``kept`` lists each kind of data with its window (``kept_for``, null: while the
organisation exists) and what the window counts from (``after``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from dozor.api.deps import AppSettings, Caller, Connection
from dozor.api.problems import Problem
from dozor.core import retention as plans
from dozor.core.durations import format_duration
from dozor.privacy import retention
from dozor.store import tables as t

router = APIRouter(tags=["account"])
# What the organisation's own window counts from, by plan (others: kept while it exists).
PLAN_END = {"trial": "trial_end", "paid": "paid_period_end"}


@router.get("/account/retention")
async def account_retention(caller: Caller, conn: Connection,
                            settings: AppSettings) -> dict[str, Any]:
    """What is kept, for how long, and when this organisation's data will be deleted if
    nothing changes (null: never; a trial is deleted some time after it ends, a paid
    account some time after its paid period)."""
    caller.require("admin")
    o = t.organizations.c
    org = (await conn.execute(select(o.plan, o.trial_ends_at, o.paid_until)
                              .where(o.id == caller.org_id))).first()
    if org is None:
        raise Problem(404, "organisation not found")
    windows = retention.Windows.from_settings(settings)
    deleted_at = plans.deletion_date(org.plan, windows=windows.plans,
                                     trial_ends_at=org.trial_ends_at,
                                     paid_until=org.paid_until)
    own = {"trial": windows.plans.trial, "paid": windows.plans.paid}.get(org.plan) \
        if deleted_at is not None else None
    p = windows.prune
    return {
        "plan": org.plan,
        "trial_ends_at": _iso(org.trial_ends_at), "paid_until": _iso(org.paid_until),
        "deleted_at": _iso(deleted_at),
        "kept": [
            _kept("organisation", own, PLAN_END.get(org.plan) if own else None),
            _kept("messages", windows.messages, "finished"),
            _kept("results", p.raw, "checked"),
            _kept("rollups_hourly", p.hourly, "hour"),
            _kept("rollups_daily", p.daily, "day"),  # closed incidents, state changes
            _kept("sessions", retention.GRACE, "expired"),  # email links, codes too
        ],
    }


def _kept(data: str, window: timedelta | None, after: str | None) -> dict[str, Any]:
    if window is None:
        return {"data": data, "kept_for": None, "days": None, "after": None}
    days = round(window / timedelta(days=1), 2)
    return {"data": data, "kept_for": format_duration(window),
            "days": int(days) if days.is_integer() else days, "after": after}


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None
