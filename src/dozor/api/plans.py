"""Plan limits, enforced by the API with errors that say which limit and why it applies.

``dozor apply`` (the operator, on the server) is not limited; the API's bulk apply is.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api.problems import Problem
from dozor.core.durations import format_duration
from dozor.core.plans import InForce, in_force
from dozor.store import tables as t


async def plan_of(connection: AsyncConnection, org_id: int) -> InForce:
    o = t.organizations.c
    row = (await connection.execute(select(o.plan, o.trial_ends_at, o.paid_until)
                                    .where(o.id == org_id))).one()
    return in_force(row.plan, now=datetime.now(UTC), trial_ends_at=row.trial_ends_at,
                    paid_until=row.paid_until)


async def check_monitor(connection: AsyncConnection, org_id: int, interval: timedelta,
                        adding: bool) -> None:
    """Raise a 403 problem naming the limit a new or changed monitor would break."""
    await check_monitors(connection, org_id, [("interval", interval)], added=int(adding))


async def check_monitors(connection: AsyncConnection, org_id: int,
                         intervals: Iterable[tuple[str, timedelta]], added: int) -> None:
    """The same for several monitors at once (a bulk apply): each ``(field, interval)``
    is a new or changed monitor's; ``added`` is how many more monitors there will be."""
    plan = await plan_of(connection, org_id)
    floor = plan.limits.min_interval
    short = [field for field, interval in intervals if interval < floor]
    if short:
        raise Problem(403, f"interval: {plan.label} checks at most every "
                      f"{format_duration(floor)}",
                      errors=[{"field": field, "message": "shorter than the plan allows"}
                              for field in short])
    cap = plan.limits.monitors
    if added > 0 and cap is not None:
        count = (await connection.execute(select(func.count()).select_from(t.monitors)
                                          .where(t.monitors.c.org_id == org_id))).scalar_one()
        if count + added > cap:
            raise Problem(403, f"{plan.label} allows {cap} monitors; this would make "
                          f"{count + added}")
