"""Plans and their limits, and which plan is in force: a trial or a paid period that has
ended leaves the account on the free plan's limits (its data stays; nothing is removed
here).

>>> from datetime import datetime, UTC
>>> now = datetime(2026, 12, 1, tzinfo=UTC)
>>> in_force("trial", trial_ends_at=datetime(2026, 12, 14, tzinfo=UTC), now=now).label
'the trial plan'
>>> in_force("trial", trial_ends_at=datetime(2026, 11, 14, tzinfo=UTC), now=now).label
'the free plan (the trial ended on 2026-11-14)'
>>> in_force("paid", paid_until=None, now=now).limits.monitors
10000
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Limits:
    monitors: int | None  # None: no limit
    min_interval: timedelta


PLANS = {
    "free": Limits(50, timedelta(minutes=5)),
    "trial": Limits(500, timedelta(seconds=30)),
    "paid": Limits(10_000, timedelta(seconds=10)),
    # The installation's own organisation: whoever runs the server sets their own limits.
    "self-hosted": Limits(None, timedelta(seconds=1)),
}
# What an operator may put an organisation on (``dozor orgs plan``).
NAMES = tuple(PLANS)


@dataclass(frozen=True, slots=True)
class InForce:
    name: str  # the plan whose limits apply
    limits: Limits
    label: str  # for messages: "the trial plan", "the free plan (the trial ended on ...)"


def in_force(plan: str, *, now: datetime, trial_ends_at: datetime | None = None,
             paid_until: datetime | None = None) -> InForce:
    """The limits that apply now to an organisation on ``plan``."""
    ended = {"trial": ("the trial", trial_ends_at), "paid": ("the paid period", paid_until)}
    if plan in ended:
        what, end = ended[plan]
        if end is not None and end <= now:
            return InForce("free", PLANS["free"],
                           f"the free plan ({what} ended on {end:%Y-%m-%d})")
    name = plan if plan in PLANS else "free"
    return InForce(name, PLANS[name], f"the {name} plan")
