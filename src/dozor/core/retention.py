"""When an organisation's data is deleted, by its plan: a trial's some months after the
trial ended, a paid account's some years after its paid period ended (so a renewal finds
its history), a free or self-hosted account's never. An account that moved from trial
to paid or free is judged by the plan it is on now.

>>> from datetime import datetime, timedelta, UTC
>>> w = Windows(trial=timedelta(days=92), paid=timedelta(days=731))
>>> deletion_date("trial", trial_ends_at=datetime(2026, 11, 1, tzinfo=UTC), windows=w)
datetime.datetime(2027, 2, 1, 0, 0, tzinfo=datetime.timezone.utc)
>>> deletion_date("paid", paid_until=datetime(2026, 11, 1, tzinfo=UTC), windows=w).date()
datetime.date(2028, 11, 1)
>>> deletion_date("free", trial_ends_at=datetime(2026, 11, 1, tzinfo=UTC), windows=w) is None
True
>>> due("trial", trial_ends_at=datetime(2026, 11, 1, tzinfo=UTC), windows=w,
...     now=datetime(2027, 2, 1, tzinfo=UTC))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Windows:
    trial: timedelta  # after the trial ended
    paid: timedelta  # after the paid period ended


def deletion_date(plan: str, *, windows: Windows, trial_ends_at: datetime | None = None,
                  paid_until: datetime | None = None) -> datetime | None:
    """When the organisation's data will be deleted if nothing changes; None: never.

    A trial without an end, or a paid plan without an end of its period, runs on, so
    nothing is due (as ``plans.in_force`` keeps its limits).
    """
    if plan == "trial" and trial_ends_at is not None:
        return trial_ends_at + windows.trial
    if plan == "paid" and paid_until is not None:
        return paid_until + windows.paid
    return None  # free, self-hosted, or a plan that has no end


def due(plan: str, *, windows: Windows, now: datetime, trial_ends_at: datetime | None = None,
        paid_until: datetime | None = None) -> bool:
    """Whether the organisation's data is to be deleted at ``now``."""
    when = deletion_date(plan, windows=windows, trial_ends_at=trial_ends_at,
                         paid_until=paid_until)
    return when is not None and when <= now
