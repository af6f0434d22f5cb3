"""A monitor's state decided from its locations' own states: the quorum. Pure, no I/O.

Each location folds its own outcomes with :mod:`core.statemachine` (``confirm_after``
per location). This module counts the locations that confirmed an outage and decides
the monitor's state. A location not heard within the freshness window (the monitor's
interval, plus its timeout, plus :data:`GRACE`) counts as unknown, never as down: a
silent probe must not page anyone.

- DOWN when at least ``needed`` fresh locations are down;
- UP when fewer are down and at least one fresh location is up (so the monitor recovers
  when fewer than ``needed`` are down);
- otherwise unchanged: nothing fresh says up, and not enough say down (every location
  silent, or still confirming after a restart).

A regional problem is some fresh locations down, but fewer than ``needed``: recorded and
shown, but it pages nobody.

>>> from datetime import UTC
>>> now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
>>> seen = [Seen("local", S.DOWN, now), Seen("fra", S.UP, now),
...         Seen("waw", S.DOWN, now - timedelta(hours=1))]
>>> d = decide(seen, needed=2, now=now, fresh_for=timedelta(minutes=2), previous=S.UP)
>>> d.state.value, d.down, d.stale, d.regional
('up', ('local',), ('waw',), True)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from dozor.core.statemachine import Tracker, Transition
from dozor.core.types import MonitorState

S = MonitorState
Rule = int | Literal["all"] | None  # None: a majority of the locations
GRACE = timedelta(seconds=30)  # for a probe's delivery delay (it sends every 0.5 s or so)


def needed(rule: Rule, count: int) -> int:
    """How many of ``count`` locations must be down to confirm an outage.

    >>> needed(None, 3), needed(None, 4), needed(None, 2), needed("all", 3), needed(1, 3)
    (2, 3, 2, 3, 1)
    """
    if rule is None:
        return count // 2 + 1  # more than half
    if rule == "all":
        return count
    return rule


def fresh_for(interval: float, timeout: float, grace: timedelta = GRACE) -> timedelta:
    """How long a location's last word counts: its interval, plus its timeout, plus grace.

    >>> fresh_for(60, 10)
    datetime.timedelta(seconds=100)
    """
    return timedelta(seconds=interval + timeout) + grace


@dataclass(frozen=True, slots=True)
class Seen:
    """One location's own confirmed state for a monitor, and when it last reported."""

    location: str
    state: MonitorState
    heard_at: datetime | None


@dataclass(frozen=True, slots=True)
class Decision:
    state: MonitorState
    down: tuple[str, ...]   # fresh locations that confirmed an outage
    up: tuple[str, ...]     # fresh locations that see the monitor up
    stale: tuple[str, ...]  # locations not heard within the window (unknown)
    needed: int

    @property
    def regional(self) -> bool:
        """Some locations see an outage, too few to confirm it."""
        return 0 < len(self.down) < self.needed


def decide(seen: Iterable[Seen], needed: int, now: datetime, fresh_for: timedelta,
           previous: MonitorState) -> Decision:
    """The monitor's state from its locations' (see the module's text)."""
    fresh, stale = [], []
    for item in seen:
        if item.heard_at is not None and now - item.heard_at <= fresh_for:
            fresh.append(item)
        else:
            stale.append(item.location)
    down = tuple(sorted(s.location for s in fresh if s.state is S.DOWN))
    up = tuple(sorted(s.location for s in fresh if s.state is S.UP))
    if len(down) >= needed:
        state = S.DOWN
    elif up:
        state = S.UP
    else:
        state = previous
    return Decision(state, down, up, tuple(sorted(stale)), needed)


def follow(tracker: Tracker, decision: Decision, at: datetime
           ) -> tuple[Tracker, Transition | None]:
    """The monitor's tracker after a decision: an incident opens when it becomes DOWN and
    closes when it leaves DOWN. ``failures`` and ``successes`` count the locations down
    and up; flapping is not followed across locations.

    >>> from datetime import UTC
    >>> at = datetime(2026, 12, 1, tzinfo=UTC)
    >>> down = Decision(S.DOWN, ("fra", "waw"), ("local",), (), 2)
    >>> tracker, change = follow(Tracker(S.UP), down, at)
    >>> tracker.incident_open, change.incident
    (True, 'open')
    >>> follow(tracker, down, at)[1] is None
    True
    """
    failures, successes = len(decision.down), len(decision.up)
    if decision.state is tracker.state:
        return replace(tracker, failures=failures, successes=successes), None
    current = decision.state
    updated = Tracker(state=current, since=at, failures=failures, successes=successes,
                      incident_open=current is S.DOWN)
    incident: Literal["open", "close"] | None = None
    if current is S.DOWN:
        incident = "open"
    elif tracker.state is S.DOWN:
        incident = "close"
    return updated, Transition(tracker.state, current, at, incident=incident)
