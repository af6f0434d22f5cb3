"""One location's view of a monitor, read back from the results it stored. Pure, no I/O.

The evaluator keeps each location's tracker in the memory of the node that runs the
monitor; a page or an API call may be answered by another node, or after a restart. So
a location's view is rebuilt from what every node can read, the same way the evaluator
builds it: its newest results (oldest first) folded through :mod:`core.statemachine`
from an empty tracker, as the evaluator's trackers start after a restart, and judged
stale by :func:`core.quorum.fresh_for`, as the quorum judges it.

- ``unknown``: no result from there;
- ``stale``: the newest is older than the freshness window (the quorum counts it as
  unknown, never as down);
- ``maintenance``: the newest was measured inside a maintenance window;
- else the state the results lead to: ``up``, ``pending`` or ``down``.

Folding :func:`replayed` results is enough for the state to match the evaluator's
whenever they hold a run of ``recover_after`` successes or ``confirm_after`` failures
(from either, the state no longer depends on older results).

>>> from datetime import UTC
>>> now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
>>> D, U = ResultStatus.DOWN, ResultStatus.UP
>>> view([U, D, D, D], now, Policy(confirm_after=3), timedelta(minutes=2), now)
'down'
>>> view([U, D], now, Policy(confirm_after=3), timedelta(minutes=2), now)
'pending'
>>> view([U], now - timedelta(minutes=5), Policy(), timedelta(minutes=2), now)
'stale'
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from dozor.core.statemachine import Policy, Tracker, observe
from dozor.core.types import ResultStatus

UNKNOWN, STALE, MAINTENANCE = "unknown", "stale", "maintenance"


def replayed(policy: Policy) -> int:
    """How many of a location's newest results to fold.

    >>> replayed(Policy(confirm_after=3, recover_after=1))
    8
    """
    return 2 * (policy.confirm_after + policy.recover_after)


def view(statuses: Sequence[ResultStatus], newest_at: datetime | None, policy: Policy,
         fresh_for: timedelta, now: datetime) -> str:
    """The view from a location's newest results, oldest first (see the module's text)."""
    if not statuses or newest_at is None:
        return UNKNOWN
    if now - newest_at > fresh_for:
        return STALE
    if statuses[-1] is ResultStatus.MAINTENANCE:
        return MAINTENANCE
    tracker = Tracker()
    for status in statuses:
        # Inside maintenance no location's outcome is folded (engine.evaluator).
        if status is not ResultStatus.MAINTENANCE:
            tracker = observe(tracker, status is ResultStatus.UP, newest_at, policy)[0]
    return tracker.state.value
