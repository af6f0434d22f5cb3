"""The quorum as a table: each location's state and freshness, the rule, the decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dozor.core.quorum import Decision, Seen, decide, follow, fresh_for, needed
from dozor.core.statemachine import Tracker
from dozor.core.types import MonitorState as S

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WINDOW = fresh_for(60, 10)  # 100 s
OLD = NOW - WINDOW - timedelta(seconds=1)
LETTERS = {"+": S.UP, "-": S.DOWN, "p": S.PENDING, "?": S.UNKNOWN}


def seen(states: str, stale: str = "") -> list[Seen]:
    """One location per letter of ``states`` (``+`` up, ``-`` down, ``p`` pending,
    ``?`` unknown), named a, b, c...; those named in ``stale`` last heard too long ago,
    and ``x`` in ``states`` a location never heard from."""
    found = []
    for name, letter in zip("abcdefgh", states, strict=False):
        if letter == "x":
            found.append(Seen(name, S.UNKNOWN, None))
        else:
            found.append(Seen(name, LETTERS[letter], OLD if name in stale else NOW))
    return found


CASES = [
    # locations, stale ones, rule, previous, state, down, stale, regional
    ("+++", "", None, S.UNKNOWN, S.UP, "", "", False),
    ("-++", "", None, S.UP, S.UP, "a", "", True),
    ("--+", "", None, S.UP, S.DOWN, "ab", "", False),
    ("---", "", None, S.UP, S.DOWN, "abc", "", False),
    ("--+", "", "all", S.UP, S.UP, "ab", "", True),
    ("---", "", "all", S.UP, S.DOWN, "abc", "", False),
    ("-++", "", 1, S.UP, S.DOWN, "a", "", False),
    ("--++", "", None, S.UP, S.UP, "ab", "", True),     # 2 of 4 is no majority
    ("---+", "", None, S.UP, S.DOWN, "abc", "", False),
    # A stale location counts as unknown, never as down.
    ("--+", "b", None, S.UP, S.UP, "a", "b", True),
    ("-x+", "", None, S.UP, S.UP, "a", "b", True),
    # Recovery: fewer than needed down, and someone fresh sees it up.
    ("-++", "", None, S.DOWN, S.UP, "a", "", True),
    ("+++", "", None, S.DOWN, S.UP, "", "", False),
    # Nothing fresh says up and too few say down: the state stays.
    ("-pp", "", None, S.DOWN, S.DOWN, "a", "", True),
    ("---", "abc", None, S.DOWN, S.DOWN, "", "abc", False),
    ("xxx", "", None, S.UNKNOWN, S.UNKNOWN, "", "abc", False),
]


@pytest.mark.parametrize(("states", "stale", "rule", "previous", "state", "down",
                          "stale_out", "regional"), CASES)
def test_the_quorum_decides(states: str, stale: str, rule: int | str | None,
                            previous: S, state: S, down: str, stale_out: str,
                            regional: bool) -> None:
    need = needed(rule, len(states))  # type: ignore[arg-type]
    decision = decide(seen(states, stale), need, NOW, WINDOW, previous)
    assert decision.state is state
    assert decision.down == tuple(down)
    assert decision.stale == tuple(stale_out)
    assert decision.regional is regional


def test_a_location_heard_exactly_at_the_edge_of_the_window_still_counts() -> None:
    edge = [Seen("a", S.DOWN, NOW - WINDOW), Seen("b", S.DOWN, NOW - WINDOW)]
    assert decide(edge, 2, NOW, WINDOW, S.UP).state is S.DOWN


def test_an_outage_opens_one_incident_and_recovery_closes_it() -> None:
    tracker = Tracker(S.UP, since=NOW)
    down = Decision(S.DOWN, ("a", "b"), ("c",), (), 2)
    tracker, opened = follow(tracker, down, NOW)
    assert opened is not None and opened.incident == "open"
    assert (tracker.state, tracker.failures, tracker.successes) == (S.DOWN, 2, 1)
    tracker, again = follow(tracker, Decision(S.DOWN, ("a", "b", "c"), (), (), 2), NOW)
    assert again is None and tracker.failures == 3 and tracker.since == NOW
    later = NOW + timedelta(minutes=5)
    tracker, closed = follow(tracker, Decision(S.UP, ("a",), ("b", "c"), (), 2), later)
    assert closed is not None and closed.incident == "close"
    assert (tracker.state, tracker.since, tracker.incident_open) == (S.UP, later, False)


def test_the_first_decision_up_opens_nothing() -> None:
    _, change = follow(Tracker(), Decision(S.UP, (), ("a",), (), 2), NOW)
    assert change is not None and (change.previous, change.current) == (S.UNKNOWN, S.UP)
    assert change.incident is None
