"""Active hours of a contact point, in the contact's time zone.

``{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"}`` is office hours on working
days (Monday is 0); an ``end`` before ``start`` runs past midnight (a night shift belongs
to the day it starts on)::

    >>> from datetime import datetime, UTC
    >>> from zoneinfo import ZoneInfo
    >>> office = ActiveHours.from_json({"days": [0, 1, 2, 3, 4], "start": "08:00",
    ...                                 "end": "18:00"})
    >>> warsaw = ZoneInfo("Europe/Warsaw")
    >>> office.is_active(datetime(2026, 11, 20, 12, 0, tzinfo=UTC), warsaw)   # Friday 13:00
    True
    >>> office.next_active(datetime(2026, 11, 20, 18, 0, tzinfo=UTC), warsaw)  # Fri 19:00
    datetime.datetime(2026, 11, 23, 7, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ActiveHoursSpec(BaseModel):
    """What people write; validated with the field named on error."""

    model_config = ConfigDict(extra="forbid")
    days: list[int] = Field(default_factory=lambda: list(range(7)), min_length=1)
    start: time = time(0, 0)
    end: time = time(0, 0)  # equal to start: the whole day

    @model_validator(mode="after")
    def _days_in_week(self) -> ActiveHoursSpec:
        if any(not 0 <= day <= 6 for day in self.days):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return self

    def to_json(self) -> dict[str, Any]:
        return {"days": sorted(set(self.days)), "start": self.start.strftime("%H:%M"),
                "end": self.end.strftime("%H:%M")}


@dataclass(frozen=True, slots=True)
class ActiveHours:
    days: frozenset[int]
    start: time
    end: time

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ActiveHours | None:
        if not data:
            return None
        spec = ActiveHoursSpec.model_validate(data)
        return cls(frozenset(spec.days), spec.start, spec.end)

    def is_active(self, at: datetime, zone: ZoneInfo) -> bool:
        local = at.astimezone(zone)
        for day_offset in (0, -1):  # today's window, or yesterday's running past midnight
            opens = self._opening(local.date() + timedelta(days=day_offset), zone)
            if opens is not None and opens <= local < opens + self._length():
                return True
        return False

    def next_active(self, at: datetime, zone: ZoneInfo) -> datetime:
        """``at`` if active then, else the next opening (within a week)."""
        if self.is_active(at, zone):
            return at
        local = at.astimezone(zone)
        for day_offset in range(8):
            opens = self._opening(local.date() + timedelta(days=day_offset), zone)
            if opens is not None and opens > local:
                return opens.astimezone(UTC)
        return at  # unreachable with at least one day set; never hold a message forever

    def _opening(self, day: Any, zone: ZoneInfo) -> datetime | None:
        if day.weekday() not in self.days:
            return None
        return datetime.combine(day, self.start, tzinfo=zone)

    def _length(self) -> timedelta:
        start = timedelta(hours=self.start.hour, minutes=self.start.minute)
        end = timedelta(hours=self.end.hour, minutes=self.end.minute)
        return (end - start) % timedelta(days=1) or timedelta(days=1)
