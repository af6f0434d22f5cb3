"""The state machine as a table: a start, a sequence of outcomes, where it must end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dozor.core.statemachine import Policy, Tracker, Transition, observe, resume, suspend
from dozor.core.types import MonitorState as S

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(
    outcomes: str, policy: Policy, start: Tracker | None = None
) -> tuple[Tracker, list[Transition]]:
    """Feed a string of outcomes ('+' ok, '-' failed) one minute apart."""
    tracker = start or Tracker()
    changes = []
    for minute, symbol in enumerate(outcomes):
        tracker, change = observe(tracker, symbol == "+", T0 + timedelta(minutes=minute), policy)
        if change:
            changes.append(change)
    return tracker, changes


CASES = [
    # outcomes, confirm_after, recover_after, final state, incident actions in order
    ("+", 3, 1, S.UP, []),
    ("-", 3, 1, S.PENDING, []),
    ("-", 1, 1, S.DOWN, ["open"]),
    ("+--", 3, 1, S.PENDING, []),
    ("+---", 3, 1, S.DOWN, ["open"]),
    ("+--+", 3, 1, S.UP, []),
    ("+-----", 3, 1, S.DOWN, ["open"]),
    ("+---+", 3, 1, S.UP, ["open", "close"]),
    ("+---+", 3, 2, S.DOWN, ["open"]),
    ("+---++", 3, 2, S.UP, ["open", "close"]),
    ("+---+-+", 3, 2, S.DOWN, ["open"]),
    ("+---+-++", 3, 2, S.UP, ["open", "close"]),
    ("+---+---+", 3, 1, S.UP, ["open", "close", "open", "close"]),
    ("--", 2, 1, S.DOWN, ["open"]),
]


@pytest.mark.parametrize(("outcomes", "confirm", "recover", "final", "incidents"), CASES)
def test_outcomes_lead_to_the_expected_state(
    outcomes: str, confirm: int, recover: int, final: S, incidents: list[str]
) -> None:
    tracker, changes = run(outcomes, Policy(confirm_after=confirm, recover_after=recover))
    assert tracker.state is final
    assert [c.incident for c in changes if c.incident] == incidents
    assert tracker.incident_open == (final is S.DOWN)


def test_since_marks_the_moment_of_the_last_change() -> None:
    tracker, _ = run("++---", Policy(confirm_after=3))
    assert tracker.since == T0 + timedelta(minutes=4)


def test_an_unchanged_state_reports_no_transition() -> None:
    _, changes = run("+++++", Policy())
    assert [c.current for c in changes] == [S.UP]


def test_steady_alternation_is_flapping_and_calm_ends_it() -> None:
    policy = Policy(confirm_after=1, flap_window=11)
    tracker, changes = run("+-" * 6, policy)
    assert tracker.flapping
    started = [c for c in changes if c.flapping_changed]
    assert len(started) == 1 and started[0].flapping
    tracker, changes = run("+" * 11, policy, start=tracker)
    assert not tracker.flapping
    assert any(c.flapping_changed and not c.flapping for c in changes)


def test_a_few_failures_in_a_window_are_not_flapping() -> None:
    tracker, _ = run("+" * 15 + "---" + "+" * 3, Policy())
    assert not tracker.flapping


def test_maintenance_keeps_an_open_incident_and_ignores_outcomes() -> None:
    down, _ = run("---", Policy())
    inside, change = suspend(down, S.MAINTENANCE, T0)
    assert change is not None and change.incident is None
    assert inside.state is S.MAINTENANCE and inside.incident_open
    assert observe(inside, True, T0, Policy()) == (inside, None)
    after, change = resume(inside, T0)
    assert after.state is S.DOWN and change is not None
    recovered, change = observe(after, True, T0, Policy())
    assert recovered.state is S.UP and change is not None and change.incident == "close"


def test_pausing_a_down_monitor_closes_its_incident() -> None:
    down, _ = run("---", Policy())
    paused, change = suspend(down, S.PAUSED, T0)
    assert change is not None and change.incident == "close"
    assert not paused.incident_open
    resumed, _ = resume(paused, T0)
    assert resumed.state is S.UNKNOWN


def test_a_paused_monitor_stays_paused_through_maintenance() -> None:
    paused, _ = suspend(Tracker(state=S.UP), S.PAUSED, T0)
    assert suspend(paused, S.MAINTENANCE, T0) == (paused, None)


def test_resume_of_an_active_monitor_changes_nothing() -> None:
    up = Tracker(state=S.UP)
    assert resume(up, T0) == (up, None)
