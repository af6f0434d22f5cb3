"""Folds outcomes into monitor states, minding maintenance windows and pauses.

The evaluator owns the in-memory tracker of every monitor; the result writer persists
what it decides. It is synchronous and does no I/O, so deciding costs microseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

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


class Evaluator:
    def __init__(self) -> None:
        self.trackers: dict[int, Tracker] = {}
        self.windows: dict[int, list[Window]] = {}  # organisation id -> its windows

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

    def evaluate(self, monitor: ActiveMonitor, outcome: Outcome, at: datetime) -> Observation:
        tracker = self.trackers.get(monitor.id) or Tracker()
        transitions: list[Transition] = []
        windows = self.windows.get(monitor.org_id)
        inside = bool(windows) and in_maintenance(windows or (), monitor.name, monitor.tags, at)
        if inside and tracker.state is not MonitorState.MAINTENANCE:
            tracker = _apply(suspend(tracker, MonitorState.MAINTENANCE, at), transitions)
        elif not inside and tracker.state is MonitorState.MAINTENANCE:
            tracker = _apply(resume(tracker, at), transitions)
        if tracker.state is not MonitorState.MAINTENANCE:
            tracker = _apply(observe(tracker, outcome.ok, at, monitor.policy), transitions)
        status = result_status(outcome.ok, tracker.state is MonitorState.MAINTENANCE)
        self.trackers[monitor.id] = tracker
        return Observation(monitor, at, tracker, outcome, status, transitions)

    def set_paused(self, monitor: ActiveMonitor, paused: bool, at: datetime
                   ) -> Observation | None:
        """Pause or resume a monitor; None when nothing changes."""
        tracker = self.trackers.get(monitor.id) or Tracker()
        step = suspend(tracker, MonitorState.PAUSED, at) if paused else resume(tracker, at)
        transitions: list[Transition] = []
        tracker = _apply(step, transitions)
        self.trackers[monitor.id] = tracker
        return Observation(monitor, at, tracker, transitions=transitions) if transitions else None

    def next_delay(self, monitor: ActiveMonitor) -> float:
        """Retry sooner while an outage is being confirmed."""
        if self.state(monitor.id) is MonitorState.PENDING:
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


def _apply(step: tuple[Tracker, Transition | None], transitions: list[Transition]) -> Tracker:
    tracker, transition = step
    if transition is not None:
        transitions.append(transition)
    return tracker
