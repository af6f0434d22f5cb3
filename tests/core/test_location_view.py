"""A location's view rebuilt from its stored results agrees with the tracker that folded
every one of them, whenever the results it replays settle the state."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from dozor.core.location_view import replayed, view
from dozor.core.statemachine import Policy, Tracker, observe
from dozor.core.types import ResultStatus

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FRESH = timedelta(minutes=2)
D, U, M = ResultStatus.DOWN, ResultStatus.UP, ResultStatus.MAINTENANCE


@pytest.mark.parametrize(("statuses", "policy", "expected"), [
    ([], Policy(), "unknown"),
    ([U, D, D], Policy(confirm_after=3), "pending"),
    ([D, D, D, U], Policy(confirm_after=3, recover_after=2), "down"),  # one up is not enough
    ([D, D, D, U, U], Policy(confirm_after=3, recover_after=2), "up"),
    ([D, M, D, D], Policy(confirm_after=3), "down"),  # maintenance results are not folded
    ([U, D, M], Policy(), "maintenance"),
])
def test_the_view_follows_the_state_machine(statuses: list[ResultStatus], policy: Policy,
                                            expected: str) -> None:
    assert view(statuses, NOW if statuses else None, policy, FRESH, NOW) == expected


def test_a_location_not_heard_within_the_window_is_stale_whatever_it_said() -> None:
    late = NOW - FRESH - timedelta(seconds=1)
    assert view([D, D, D], late, Policy(confirm_after=1), FRESH, NOW) == "stale"
    assert view([D, D, D], NOW - FRESH, Policy(confirm_after=1), FRESH, NOW) == "down"


def settled(window: list[bool], policy: Policy) -> bool:
    """Whether the window holds a run that decides the state whatever came before."""
    run, previous = 0, None
    for ok in window:
        run = run + 1 if ok == previous else 1
        previous = ok
        if run >= (policy.recover_after if ok else policy.confirm_after):
            return True
    return False


def test_replaying_the_newest_results_agrees_with_folding_them_all() -> None:
    rng = random.Random(7)
    compared = 0
    for _ in range(2000):
        policy = Policy(confirm_after=rng.randint(1, 5), recover_after=rng.randint(1, 3))
        share = rng.choice((0.3, 0.7, 0.9))  # of checks that pass
        outcomes = [rng.random() < share for _ in range(rng.randint(1, 80))]
        tracker = Tracker()
        for ok in outcomes:
            tracker = observe(tracker, ok, NOW, policy)[0]
        window = outcomes[-replayed(policy):]
        if settled(window, policy):  # else it may differ (see core.location_view)
            statuses = [U if ok else D for ok in window]
            assert view(statuses, NOW, policy, FRESH, NOW) == tracker.state.value, (
                policy, outcomes)
            compared += 1
    assert compared > 1800
