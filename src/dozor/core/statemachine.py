"""How a monitor's state follows its check outcomes. Pure functions, no clock, no I/O.

    UNKNOWN --ok--> UP --fail--> PENDING --(confirm_after failures)--> DOWN  (incident opens)
    DOWN --(recover_after successes)--> UP                                   (incident closes)
    PENDING --ok--> UP                                 (never confirmed: no incident)

PAUSED and MAINTENANCE are entered and left by :func:`suspend` and :func:`resume`.
Maintenance keeps an open incident open (the outage is real, only silenced); a pause
closes it, because nobody is watching any more.

Flapping follows Nagios' idea: over the last ``flap_window`` outcomes, the share of
changes between neighbours; entering above ``flap_high``, leaving below ``flap_low``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from dozor.core.types import MonitorState

S = MonitorState
IncidentAction = Literal["open", "close"] | None


@dataclass(frozen=True, slots=True)
class Policy:
    confirm_after: int = 3   # consecutive failures before DOWN; 1 means at once
    recover_after: int = 1   # consecutive successes before DOWN becomes UP
    flap_window: int = 21
    flap_high: float = 0.5
    flap_low: float = 0.25


@dataclass(frozen=True, slots=True)
class Tracker:
    """A monitor's state and what is needed to decide the next one."""

    state: MonitorState = S.UNKNOWN
    since: datetime | None = None
    failures: int = 0
    successes: int = 0
    history: int = 0       # last outcomes as bits, newest in bit 0, 1 = ok
    history_len: int = 0
    flapping: bool = False
    incident_open: bool = False  # true while DOWN, and through maintenance entered DOWN


@dataclass(frozen=True, slots=True)
class Transition:
    previous: MonitorState
    current: MonitorState
    at: datetime
    incident: IncidentAction = None
    flapping: bool = False
    flapping_changed: bool = False


def observe(
    tracker: Tracker, ok: bool, at: datetime, policy: Policy
) -> tuple[Tracker, Transition | None]:
    """Fold one outcome into the tracker. Suspended monitors ignore outcomes."""
    if tracker.state in (S.PAUSED, S.MAINTENANCE):
        return tracker, None
    history, length = _push(tracker.history, tracker.history_len, ok, policy.flap_window)
    flapping = _flapping(history, length, tracker.flapping, policy)
    if ok:
        successes, failures = tracker.successes + 1, 0
    else:
        successes, failures = 0, tracker.failures + 1
    state = _next_state(tracker.state, successes, failures, policy)
    updated = Tracker(
        state=state,
        since=at if state is not tracker.state else tracker.since,
        failures=failures,
        successes=successes,
        history=history,
        history_len=length,
        flapping=flapping,
        incident_open=state is S.DOWN,
    )
    if state is tracker.state and flapping == tracker.flapping:
        return updated, None
    return updated, Transition(
        previous=tracker.state,
        current=state,
        at=at,
        incident=_incident_action(tracker.state, state),
        flapping=flapping,
        flapping_changed=flapping != tracker.flapping,
    )


def suspend(
    tracker: Tracker, into: Literal[S.PAUSED, S.MAINTENANCE], at: datetime
) -> tuple[Tracker, Transition | None]:
    """Pause a monitor, or put it in maintenance."""
    if tracker.state is into or (tracker.state is S.PAUSED and into is S.MAINTENANCE):
        return tracker, None  # a paused monitor stays paused through maintenance
    was_down = tracker.incident_open
    keep_incident = was_down and into is S.MAINTENANCE
    updated = Tracker(state=into, since=at, incident_open=keep_incident)
    closes = was_down and not keep_incident
    return updated, Transition(tracker.state, into, at, incident="close" if closes else None)


def resume(tracker: Tracker, at: datetime) -> tuple[Tracker, Transition | None]:
    """Leave a pause or a maintenance window; the next outcome decides the state."""
    if tracker.state not in (S.PAUSED, S.MAINTENANCE):
        return tracker, None
    state = S.DOWN if tracker.incident_open else S.UNKNOWN
    updated = Tracker(state=state, since=at, incident_open=tracker.incident_open)
    return updated, Transition(tracker.state, state, at)


def _next_state(
    state: MonitorState, successes: int, failures: int, policy: Policy
) -> MonitorState:
    if state is S.DOWN:
        return S.UP if successes >= policy.recover_after else S.DOWN
    if failures == 0:
        return S.UP
    return S.DOWN if failures >= policy.confirm_after else S.PENDING


def _incident_action(previous: MonitorState, current: MonitorState) -> IncidentAction:
    if current is S.DOWN and previous is not S.DOWN:
        return "open"
    if previous is S.DOWN and current is not S.DOWN:
        return "close"
    return None


def _push(history: int, length: int, ok: bool, window: int) -> tuple[int, int]:
    history = ((history << 1) | int(ok)) & ((1 << window) - 1)
    return history, min(length + 1, window)


def _flapping(history: int, length: int, was_flapping: bool, policy: Policy) -> bool:
    if length < policy.flap_window:
        return False
    neighbours = (history ^ (history >> 1)) & ((1 << (length - 1)) - 1)
    share = neighbours.bit_count() / (length - 1)
    if was_flapping:
        return share > policy.flap_low
    return share >= policy.flap_high

