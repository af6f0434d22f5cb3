"""When a maintenance window is open. Pure: give it the windows and a moment.

A window is one-off (start, end in UTC) or recurring: a cron expression of start times in
the window's time zone, each lasting ``duration``. Wall-clock times follow the zone's
daylight saving rules, so "0 3 * * *" in Europe/Warsaw is always 03:00 there.

>>> from datetime import timedelta
>>> w = Window(name="nightly", cron="0 3 * * *", duration=timedelta(hours=1),
...            timezone="UTC", all_monitors=True)
>>> w.is_open(datetime(2026, 1, 1, 3, 30, tzinfo=UTC))
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    cron: str | None = None
    duration: timedelta | None = None
    timezone: str = "UTC"
    all_monitors: bool = False
    monitor_names: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()

    def covers(self, monitor_name: str, monitor_tags: Iterable[str]) -> bool:
        return (self.all_monitors or monitor_name in self.monitor_names
                or not self.tags.isdisjoint(monitor_tags))

    def is_open(self, at: datetime) -> bool:
        if self.starts_at is not None and self.ends_at is not None:
            return self.starts_at <= at < self.ends_at
        if self.cron is None or self.duration is None:
            return False
        zone = ZoneInfo(self.timezone)
        # The latest start at or before `at`; croniter works in the zone's wall time.
        # Arithmetic in UTC, then to local time: adding to an aware local time would drop
        # its fold and misread the repeated hour when clocks go back.
        local = (at + timedelta(seconds=1)).astimezone(zone)
        try:
            last_start: datetime = croniter(self.cron, local).get_prev(datetime)
        except CroniterBadDateError:  # never matches (a window stored before specs said so)
            return False
        start_utc = last_start.astimezone(UTC)
        return start_utc <= at < start_utc + self.duration


def in_maintenance(
    windows: Iterable[Window], monitor_name: str, monitor_tags: Iterable[str], at: datetime
) -> bool:
    tags = frozenset(monitor_tags)
    return any(w.covers(monitor_name, tags) and w.is_open(at) for w in windows)
