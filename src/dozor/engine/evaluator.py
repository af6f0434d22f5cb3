"""Folds outcomes into monitor states, minding maintenance windows and pauses.

The evaluator owns the in-memory tracker of every monitor; the result writer persists
what it decides. It is synchronous and does no I/O, so deciding costs microseconds.

A monitor with ``locations`` (``ActiveMonitor.quorum``; one location too) has a tracker per
location besides its own: each location's outcomes go through the state machine
(``confirm_after`` per location), and the monitor's state is what ``core.quorum`` decides
from them, so its incidents come from the quorum alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from dozor.core import quorum
from dozor.core.maintenance import Window, in_maintenance
from dozor.core.statemachine import Tracker, Transition, observe, resume, suspend
from dozor.core.types import MonitorState, Outcome, ResultStatus
from dozor.engine.model import ActiveMonitor


@dataclass(slots=True)
class Observation:
    """What one check (or a pause) changed: the result to store and the new state."""

    monitor: ActiveMonitor
    at: datetime
    tracker: Tracker
    outcome: Outcome | None = None
    status: ResultStatus | None = None
    transitions: list[Transition] = field(default_factory=list)
    at_ms: int = 0  # the stored time, fixed by the writer when it takes the observation
    # Locations that see the monitor down, too few to confirm an outage (core.quorum).
    regional: tuple[str, ...] = ()
    # Measured by a probe and stored by api.probes: the writer stores only the state.
    remote: bool = False


class Evaluator:
    def __init__(self) -> None:
        self.trackers: dict[int, Tracker] = {}
        self.windows: dict[int, list[Window]] = {}  # organisation id -> its windows
        # monitor id -> location -> (its tracker, the time of its newest outcome)
        self.locations: dict[int, dict[str, tuple[Tracker, datetime]]] = {}
        self.regional: dict[int, tuple[str, ...]] = {}

    def set_windows(self, windows: Iterable[tuple[int, Window]]) -> None:
        """Each organisation's windows. A window covers monitors of its own organisation
        only: windows match monitors by name and tag, which other organisations reuse."""
        by_org: dict[int, list[Window]] = {}
        for org_id, window in windows:
            by_org.setdefault(org_id, []).append(window)
        self.windows = by_org

    def state(self, monitor_id: int) -> MonitorState:
        tracker = self.trackers.get(monitor_id)
        return tracker.state if tracker else MonitorState.UNKNOWN

    def evaluate(self, monitor: ActiveMonitor, outcome: Outcome, at: datetime,
                 location: str = "", now: datetime | None = None) -> Observation:
        """Fold an outcome measured at ``at`` (from ``location``, which only a monitor
        with a quorum minds). ``now`` is when it is decided, ``at`` unless a probe's
        result arrives later: maintenance and the quorum's freshness go by it."""
        now = now or at
        tracker = self.trackers.get(monitor.id) or Tracker()
        transitions: list[Transition] = []
        windows = self.windows.get(monitor.org_id)
        inside = bool(windows) and in_maintenance(windows or (), monitor.name, monitor.tags, now)
        if inside and tracker.state is not MonitorState.MAINTENANCE:
            tracker = _apply(suspend(tracker, MonitorState.MAINTENANCE, now), transitions)
        elif not inside and tracker.state is MonitorState.MAINTENANCE:
            tracker = _apply(resume(tracker, now), transitions)
        if monitor.quorum is not None:
            if tracker.state not in (MonitorState.MAINTENANCE, MonitorState.PAUSED):
                tracker = self._by_quorum(monitor, tracker, location, outcome.ok, at, now,
                                          transitions)
        elif tracker.state is not MonitorState.MAINTENANCE:
            tracker = _apply(observe(tracker, outcome.ok, at, monitor.policy), transitions)
        status = result_status(outcome.ok, tracker.state is MonitorState.MAINTENANCE)
        self.trackers[monitor.id] = tracker
        return Observation(monitor, at, tracker, outcome, status, transitions,
                           regional=self.regional.get(monitor.id, ()))

    def _by_quorum(self, monitor: ActiveMonitor, tracker: Tracker, location: str, ok: bool,
                   at: datetime, now: datetime, transitions: list[Transition]) -> Tracker:
        assert monitor.quorum is not None
        trackers = self.locations.setdefault(monitor.id, {})
        own = trackers[location][0] if location in trackers else Tracker()
        trackers[location] = (observe(own, ok, at, monitor.policy)[0], at)
        seen = [_seen(name, trackers.get(name)) for name in monitor.locations]
        decision = quorum.decide(seen, monitor.quorum, now,
                                 quorum.fresh_for(monitor.interval, monitor.timeout),
                                 tracker.state)
        self.regional[monitor.id] = decision.down if decision.regional else ()
        return _apply(quorum.follow(tracker, decision, now), transitions)

    def replay(self, monitor: ActiveMonitor, location: str,
               outcomes: Iterable[tuple[datetime, bool]]) -> None:
        """Rebuild a location's tracker from its stored recent outcomes (oldest first),
        after a restart or when this node takes the monitor over: its quorum then counts
        the locations at once instead of waiting for each to confirm again. The monitor's
        own state is the stored one; nothing here is a transition."""
        trackers = self.locations.setdefault(monitor.id, {})
        own, last = trackers.get(location, (Tracker(), None))
        for at, ok in outcomes:
            if last is None or at > last:
                own, last = observe(own, ok, at, monitor.policy)[0], at
        if last is not None:
            trackers[location] = (own, last)

    def is_news(self, monitor_id: int, location: str, at: datetime) -> bool:
        """Whether an outcome from ``location`` is newer than the last one folded from
        there (an older one, a probe's late or resent result, is stored, not evaluated)."""
        last = self.locations.get(monitor_id, {}).get(location)
        return last is None or at > last[1]

    def is_latest(self, monitor_id: int, at: datetime) -> bool:
        """Whether an outcome is newer than every one folded from any location."""
        seen = self.locations.get(monitor_id, {}).values()
        return all(at > newest for _, newest in seen)

    def forget(self, monitor_id: int) -> None:
        """Drop what is held for a removed monitor."""
        self.trackers.pop(monitor_id, None)
        self.locations.pop(monitor_id, None)
        self.regional.pop(monitor_id, None)

    def set_paused(self, monitor: ActiveMonitor, paused: bool, at: datetime
                   ) -> Observation | None:
        """Pause or resume a monitor; None when nothing changes."""
        tracker = self.trackers.get(monitor.id) or Tracker()
        step = suspend(tracker, MonitorState.PAUSED, at) if paused else resume(tracker, at)
        transitions: list[Transition] = []
        tracker = _apply(step, transitions)
        self.trackers[monitor.id] = tracker
        self.regional.pop(monitor.id, None)
        return Observation(monitor, at, tracker, transitions=transitions) if transitions else None

    def next_delay(self, monitor: ActiveMonitor, location: str = "") -> float:
        """Retry sooner while an outage is being confirmed (at this location, for a
        monitor with a quorum)."""
        state = self.state(monitor.id)
        if monitor.quorum is not None:
            own = self.locations.get(monitor.id, {}).get(location)
            state = own[0].state if own else MonitorState.UNKNOWN
        if state is MonitorState.PENDING:
            return monitor.retry_interval
        return monitor.interval


def result_status(ok: bool, maintenance: bool) -> ResultStatus:
    """How a result is stored: measured inside maintenance (left out of uptime), else
    up or down. Results from probes are stored by the same rule (``api.probes``).

    >>> result_status(False, maintenance=True).name, result_status(True, False).name
    ('MAINTENANCE', 'UP')
    """
    if maintenance:
        return ResultStatus.MAINTENANCE
    return ResultStatus.UP if ok else ResultStatus.DOWN


def _seen(location: str, held: tuple[Tracker, datetime] | None) -> quorum.Seen:
    if held is None:
        return quorum.Seen(location, MonitorState.UNKNOWN, None)
    return quorum.Seen(location, held[0].state, held[1])


def _apply(step: tuple[Tracker, Transition | None], transitions: list[Transition]) -> Tracker:
    tracker, transition = step
    if transition is not None:
        transitions.append(transition)
    return tracker
