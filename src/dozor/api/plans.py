"""Plans and their limits, enforced by the API with errors that say which limit.

>>> PLANS["free"].min_interval
datetime.timedelta(seconds=300)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.api.problems import Problem
from dozor.core.durations import format_duration
from dozor.store import tables as t


@dataclass(frozen=True, slots=True)
class Plan:
    monitors: int | None  # None: no limit
    min_interval: timedelta


PLANS = {
    "free": Plan(50, timedelta(minutes=5)),
    "trial": Plan(500, timedelta(seconds=30)),
    "paid": Plan(10_000, timedelta(seconds=10)),
    "self-hosted": Plan(None, timedelta(seconds=1)),
}


async def plan_of(connection: AsyncConnection, org_id: int) -> tuple[str, Plan]:
    name = (await connection.execute(select(t.organizations.c.plan)
                                     .where(t.organizations.c.id == org_id))).scalar_one()
    return name, PLANS.get(name, PLANS["free"])


async def check_monitor(connection: AsyncConnection, org_id: int, interval: timedelta,
                        adding: bool) -> None:
    """Raise a 403 problem naming the limit a new or changed monitor would break."""
    name, plan = await plan_of(connection, org_id)
    if interval < plan.min_interval:
        raise Problem(403, f"interval: the {name} plan checks at most every "
                      f"{format_duration(plan.min_interval)}",
                      errors=[{"field": "interval", "message": "shorter than the plan allows"}])
    if adding and plan.monitors is not None:
        count = (await connection.execute(select(func.count()).select_from(t.monitors)
                                          .where(t.monitors.c.org_id == org_id))).scalar_one()
        if count >= plan.monitors:
            raise Problem(403, f"the {name} plan allows {plan.monitors} monitors")
