"""``dozor orgs``: the operator's view of the organisations on this installation, their
plans and SMS credits. There is no billing inside Dozor: whoever runs the server decides
who is on which plan (after a payment through their provider, say) and records it here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click
from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dozor.cli_format import table
from dozor.cli_support import with_database
from dozor.core.durations import format_duration
from dozor.core.plans import NAMES, in_force
from dozor.privacy import audit
from dozor.store import tables as t

o = t.organizations.c


@click.group("orgs")
def orgs_group() -> None:
    """Organisations: plans, trial and paid periods, SMS credits."""


@orgs_group.command("list")
@with_database
async def orgs_list(database: AsyncEngine) -> None:
    now = datetime.now(UTC)
    monitors = (select(t.monitors.c.org_id, func.count().label("n"))
                .group_by(t.monitors.c.org_id).subquery())
    async with database.connect() as connection:
        rows = (await connection.execute(
            select(t.organizations, func.coalesce(monitors.c.n, 0).label("monitors"))
            .outerjoin(monitors, monitors.c.org_id == o.id).order_by(o.id))).all()
    click.echo(table(
        ["ID", "NAME", "PLAN", "LIMITS", "UNTIL", "MONITORS", "SMS CREDITS"],
        [[str(row.id), row.name, row.plan, _limits(row, now), _until(row),
          str(row.monitors), str(row.sms_credits)] for row in rows]))


def _limits(row: Row[Any], now: datetime) -> str:
    plan = in_force(row.plan, now=now, trial_ends_at=row.trial_ends_at,
                    paid_until=row.paid_until)
    cap = "no limit" if plan.limits.monitors is None else f"{plan.limits.monitors} monitors"
    ended = " (ended)" if plan.name != row.plan else ""
    return f"{cap}, every {format_duration(plan.limits.min_interval)}{ended}"


def _until(row: Row[Any]) -> str:
    end = {"trial": row.trial_ends_at, "paid": row.paid_until}.get(row.plan)
    return f"{end:%Y-%m-%d %H:%M}" if end else "-"


@orgs_group.command("plan")
@click.argument("org", type=int)
@click.argument("plan", type=click.Choice(NAMES))
@click.option("--days", type=click.IntRange(min=1),
              help="Length of the trial or the paid period, from now.")
@click.option("--until", "until", type=click.DateTime(["%Y-%m-%d"]),
              help="End of the trial or the paid period (a date, UTC).")
@with_database
async def orgs_plan(database: AsyncEngine, org: int, plan: str, days: int | None,
                    until: datetime | None) -> None:
    """Put an organisation on a plan; a trial or a paid plan needs its end."""
    now = datetime.now(UTC)
    if days is not None and until is not None:
        raise click.UsageError("give --days or --until, not both")
    end = (now + timedelta(days=days) if days is not None
           else until.replace(tzinfo=UTC) if until is not None else None)
    if plan in ("trial", "paid") and end is None:
        raise click.UsageError(f"a {plan} plan needs its end: --days N or --until DATE")
    if plan not in ("trial", "paid") and end is not None:
        raise click.UsageError(f"the {plan} plan has no end; leave out --days and --until")
    if end is not None and end <= now:
        raise click.UsageError(f"--until: {end:%Y-%m-%d} has passed")
    changes: dict[str, object] = {"plan": plan}
    if plan == "trial":
        changes["trial_ends_at"] = end
    elif plan == "paid":
        changes["paid_until"] = end
    else:  # no billing data kept for a plan without one (retention then keeps it all)
        changes |= {"trial_ends_at": None, "paid_until": None}
    async with database.begin() as connection:
        await _organisation(connection, org)
        await connection.execute(update(t.organizations).where(o.id == org).values(changes))
        await audit.record(connection, "plan_changed", org_id=org, user_id=None,
                           target=f"organisation {org}",
                           detail={"plan": plan, "until": end.isoformat() if end else None})
    click.echo(f"organisation {org}: {plan}" + (f" until {end:%Y-%m-%d}" if end else ""))


# Unknown options pass as arguments, so a negative AMOUNT (``-20``) is not read as one.
@orgs_group.command("credits", context_settings={"ignore_unknown_options": True})
@click.argument("org", type=int)
@click.argument("amount", type=int)
@with_database
async def orgs_credits(database: AsyncEngine, org: int, amount: int) -> None:
    """Add SMS credits (a negative AMOUNT takes some back, never below zero)."""
    async with database.begin() as connection:
        before = (await _organisation(connection, org)).sms_credits
        after = max(0, before + amount)
        await connection.execute(update(t.organizations).where(o.id == org)
                                 .values(sms_credits=after))
        await audit.record(connection, "sms_credits_changed", org_id=org, user_id=None,
                           target=f"organisation {org}",
                           detail={"before": before, "after": after})
    click.echo(f"organisation {org}: {after} SMS credits (was {before})")


async def _organisation(connection: AsyncConnection, org: int) -> Row[Any]:
    row = (await connection.execute(select(t.organizations).where(o.id == org))).first()
    if row is None:
        raise click.ClickException(f"org: no organisation {org} (see `dozor orgs list`)")
    return row


GROUPS = (orgs_group,)
